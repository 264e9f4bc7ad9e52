"""The realistic profile's XML faces on their own: the plain XML list and the SOAP service."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from democrm.realistic import REALISTIC_STORE

from .conftest import AS_ALICE

PLAIN = "{urn:democrm:v2}"
CRM = "{urn:democrm:soap}"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(call: str) -> bytes:
    return (
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:crm="urn:democrm:soap"><soap:Body>{call}'
        f"</soap:Body></soap:Envelope>"
    ).encode()


async def soap(crm, call: str, status: int = 200) -> ElementTree.Element:
    response = await crm.post("/soap/", data=envelope(call), headers={**AS_ALICE, "Content-Type": "text/xml"})
    assert response.status == status and response.content_type == "text/xml", await response.text()
    return ElementTree.fromstring(await response.read())


async def test_the_plain_list_is_the_json_list_in_xml(realistic):
    json_list = await (await realistic.get("/api/v2/leads/?status=assigned", headers=AS_ALICE)).json()
    response = await realistic.get("/api/v2/xml/leads/?status=assigned", headers=AS_ALICE)
    assert response.status == 200 and response.content_type == "application/xml"
    root = ElementTree.fromstring(await response.read())
    leads = root.findall(f"{PLAIN}leads/{PLAIN}lead")
    assert [lead.get("id") for lead in leads] == [r["id"] for r in json_list["results"]]
    assert root.findtext(PLAIN + "count") == str(json_list["count"])
    assert root.findtext(PLAIN + "totalCount") == "60" and len(root.findall(f"{PLAIN}users/{PLAIN}user")) > 5
    first, record = leads[0], json_list["results"][0]
    assert [a.get("id") for a in first.findall(PLAIN + "assigned_to")] == [p["id"] for p in record["assigned_to"]]
    assert [t.get("name") for t in first.findall(PLAIN + "teams")] == [t["name"] for t in record["teams"]]


async def test_get_leads_over_soap_pages_like_the_json_list(realistic):
    json_list = await (await realistic.get("/api/v2/leads/?limit=5&page=2", headers=AS_ALICE)).json()
    root = await soap(realistic, "<crm:GetLeads><crm:limit>5</crm:limit><crm:page>2</crm:page></crm:GetLeads>")
    assert root.find(f"{{{SOAP_ENV}}}Header") is not None
    response = root.find(f"{{{SOAP_ENV}}}Body/{CRM}GetLeadsResponse")
    assert [e.findtext(CRM + "id") for e in response.findall(CRM + "lead")] == [r["id"] for r in json_list["results"]]
    assert response.findtext(CRM + "count") == response.findtext(CRM + "totalCount") == "60"


async def test_delete_lead_deletes_and_unknown_calls_are_faults(realistic):
    victim = realistic.app[REALISTIC_STORE].all("leads")[0]["id"]
    root = await soap(realistic, f"<crm:DeleteLead><crm:id>{victim}</crm:id></crm:DeleteLead>")
    assert root.findtext(f".//{CRM}deleted") == "1" and realistic.app[REALISTIC_STORE].get("leads", victim) is None
    fault = await soap(realistic, "<crm:DropTables/>", status=500)
    assert fault.findtext(f".//{{{SOAP_ENV}}}Fault/faultcode") == "soap:Client"


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE x [<!ENTITY a "b">]><x/>',
        b"not xml",
        envelope("<crm:GetLeads/><crm:GetLeads/>"),
    ],
)
async def test_unreadable_envelopes_are_client_faults(realistic, body):
    response = await realistic.post("/soap/", data=body, headers={**AS_ALICE, "Content-Type": "text/xml"})
    assert response.status == 500 and b"soap:Client" in await response.read()
