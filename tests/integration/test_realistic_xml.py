"""The XML twins of the realistic CRM's leads list through the real gateway: plain XML
(``GET /api/v2/xml/leads/``) and SOAP (``POST /soap/``, a GetLeads envelope) are scoped and masked
exactly like the JSON list for a rep (carol, own), a manager (dave, team) and a support agent
(frank, all, masked); what the catalogue does not declare (``<totalCount>``, ``<users>``, the SOAP
Header) never reaches them; a DeleteLead envelope posted where GetLeads is declared never reaches
the CRM."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from democrm.app import REQUESTS_SEEN
from democrm.app import create_app as create_crm
from democrm.realistic import REALISTIC_STORE
from tests.conftest import REPO
from tests.integration.conftest import CRM_TOKEN, auth

RULES = REPO / "examples" / "realistic"
PLAIN = "{urn:democrm:v2}"
CRM = "{urn:democrm:soap}"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XML = {"Content-Type": "text/xml; charset=utf-8"}
COMPARED = ("title", "amount", "Phone", "mobilePhone", "email", "quote_price")  # masked ones included


@pytest.fixture
async def crm(aiohttp_server):
    return await aiohttp_server(create_crm(profile="realistic", service_token=CRM_TOKEN))


@pytest.fixture
async def gw(make_gateway, crm):
    return await make_gateway(crm, rules=RULES)


def envelope(call: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}" '
        f'xmlns:crm="urn:democrm:soap"><soap:Body>{call}</soap:Body></soap:Envelope>'
    ).encode()


GET_LEADS = envelope("<crm:GetLeads><crm:limit>100</crm:limit></crm:GetLeads>")


async def json_twin(gw, user: str) -> dict:
    resp = await gw.get("/api/v2/leads/?limit=100", headers=auth(user))
    assert resp.status == 200, await resp.text()
    return await resp.json()


def as_json_text(value) -> str | None:
    """A JSON value as the XML answers spell it: numbers as their text, null as absent or empty."""
    return None if value is None else str(value)


def leaf(element: ElementTree.Element, tag: str) -> str | None:
    child = element.find(tag)
    return (
        None if child is None or child.get("{http://www.w3.org/2001/XMLSchema-instance}nil") else (child.text or None)
    )


def expect_like_twin(leads: list[dict], twin: dict, ns: str) -> None:
    records = twin["results"]
    assert [lead["id"] for lead in leads] == [r["id"] for r in records]
    for lead, record in zip(leads, records):
        for field in COMPARED:
            assert lead["fields"][field] == as_json_text(record.get(field)), (field, lead["id"])
        assert lead["contacts"] == [c["id"] for c in record.get("contacts", [])]


def plain_leads(root: ElementTree.Element) -> list[dict]:
    return [
        {
            "id": e.get("id"),
            "fields": {f: leaf(e, PLAIN + f) for f in COMPARED},
            "contacts": [c.get("id") for c in e.findall(PLAIN + "contacts")],
        }
        for e in root.findall(f"{PLAIN}leads/{PLAIN}lead")
    ]


def soap_leads(root: ElementTree.Element) -> list[dict]:
    body = root.find(f"{{{SOAP_ENV}}}Body/{CRM}GetLeadsResponse")
    return [
        {
            "id": e.findtext(CRM + "id"),
            "fields": {f: leaf(e, CRM + f) for f in COMPARED},
            "contacts": [c.findtext(CRM + "id") for c in e.findall(CRM + "contacts")],
        }
        for e in body.findall(CRM + "lead")
    ]


def all_leads(crm) -> list[dict]:
    return crm.app[REALISTIC_STORE].all("leads")


@pytest.mark.parametrize("user", ["carol", "dave", "frank"])
async def test_the_plain_xml_list_is_scoped_and_masked_like_its_json_twin(gw, crm, user):
    twin = await json_twin(gw, user)
    resp = await gw.get("/api/v2/xml/leads/?limit=100", headers=auth(user))
    assert resp.status == 200 and resp.content_type == "application/xml", await resp.text()
    root = ElementTree.fromstring(await resp.read())
    leads = plain_leads(root)
    expect_like_twin(leads, twin, PLAIN)
    assert root.findtext(PLAIN + "count") == str(twin["count"]) == str(len(leads))
    assert root.find(PLAIN + "totalCount") is None and root.find(PLAIN + "users") is None
    assert (0 < len(leads) < len(all_leads(crm))) if user != "frank" else len(leads) == len(all_leads(crm))


@pytest.mark.parametrize("user", ["carol", "dave", "frank"])
async def test_the_soap_list_is_scoped_and_masked_like_its_json_twin(gw, crm, user):
    twin = await json_twin(gw, user)
    resp = await gw.post("/soap/", data=GET_LEADS, headers={**auth(user), **XML})
    assert resp.status == 200, await resp.text()
    root = ElementTree.fromstring(await resp.read())
    assert root.tag == f"{{{SOAP_ENV}}}Envelope" and root.find(f"{{{SOAP_ENV}}}Header") is None
    leads = soap_leads(root)
    expect_like_twin(leads, twin, CRM)
    response = root.find(f"{{{SOAP_ENV}}}Body/{CRM}GetLeadsResponse")
    assert response.findtext(CRM + "count") == str(twin["count"]) == str(len(leads))
    assert response.find(CRM + "totalCount") is None and response.find(CRM + "users") is None
    if user == "frank":
        assert all(lead["fields"]["amount"] is None and lead["fields"]["quote_price"] is None for lead in leads)
        assert all(set(lead["fields"]["Phone"][:-4]) == {"*"} for lead in leads)


async def test_an_unrestricted_caller_gets_the_crm_answer_as_it_was(gw, crm):
    resp = await gw.post("/soap/", data=GET_LEADS, headers={**auth("grace"), **XML})
    assert resp.status == 200
    root = ElementTree.fromstring(await resp.read())
    assert root.find(f"{{{SOAP_ENV}}}Header") is not None
    assert root.find(f".//{CRM}totalCount").text == str(len(all_leads(crm)))


@pytest.mark.parametrize("user", ["carol", "frank", "grace"])
async def test_a_delete_posted_where_the_catalogue_declares_get_leads_never_reaches_the_crm(gw, crm, user):
    victim = all_leads(crm)[0]["id"]
    for call in (
        f"<crm:DeleteLead><crm:id>{victim}</crm:id></crm:DeleteLead>",
        f"<crm:GetLeads/><crm:DeleteLead><crm:id>{victim}</crm:id></crm:DeleteLead>",
    ):
        resp = await gw.post("/soap/", data=envelope(call), headers={**auth(user), **XML})
        assert resp.status == 403 and (await resp.json())["reason"] == "body-undeclared"
    assert list(crm.app[REQUESTS_SEEN]) == []
    assert crm.app[REALISTIC_STORE].get("leads", victim) is not None


async def test_undeclared_call_parameters_of_a_restricted_caller_are_refused(gw, crm):
    call = envelope(
        "<crm:GetLeads><crm:limit>100</crm:limit><crm:includeArchived>1</crm:includeArchived></crm:GetLeads>"
    )
    resp = await gw.post("/soap/", data=call, headers={**auth("carol"), **XML})
    assert resp.status == 403 and (await resp.json())["reason"] == "field-not-writable"
    assert list(crm.app[REQUESTS_SEEN]) == []
