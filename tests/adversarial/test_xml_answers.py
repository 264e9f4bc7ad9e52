"""A CRM answering XML the gateway must not expand or fetch: an XML bomb (billion laughs), external
entities, an external DTD. The realistic catalogue's XML list and SOAP endpoints sit in front of the
recording stand-in; every such answer is refused with a 502, to a restricted caller (carol, whose
answer is filtered) and to an unrestricted one (grace, whose answer is only counted), and nothing is
expanded into the answer or fetched from anywhere."""

from __future__ import annotations

import pytest

from tests.adversarial.conftest import bearer
from tests.adversarial.standin import Reply
from tests.conftest import REPO

RULES = REPO / "examples" / "realistic"
XML = [("Content-Type", "text/xml; charset=utf-8")]
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
GET_LEADS = (
    f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:crm="urn:democrm:soap"><soap:Body>'
    f"<crm:GetLeads/></soap:Body></soap:Envelope>"
).encode()
ENDPOINTS = {
    "plain": ("GET", "/api/v2/xml/leads/", "<response><leads><lead><id>{x}</id></lead></leads></response>"),
    "soap": (
        "POST",
        "/soap/",
        (
            f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body><GetLeadsResponse>'
            "<lead><id>{x}</id></lead></GetLeadsResponse></soap:Body></soap:Envelope>"
        ),
    ),
}


def laughs(depth: int = 10) -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, depth)]
    return f"<!DOCTYPE response [{''.join(entities)}]>"


def answers(port: int) -> dict[str, tuple[str, str]]:
    """name -> (DOCTYPE, what stands in the record's id)."""
    return {
        "billion-laughs": (laughs(), "&lol9;"),
        "external-entity-file": ('<!DOCTYPE response [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
        "external-entity-http": (f'<!DOCTYPE response [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/leak">]>', "&x;"),
        "external-dtd": (f'<!DOCTYPE response SYSTEM "http://127.0.0.1:{port}/evil.dtd">', "1"),
        "parameter-entity": (f'<!DOCTYPE response [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd"> %p;]>', "1"),
    }


CALLERS = {"carol-filtered": "carol", "grace-counted": "grace"}


@pytest.mark.parametrize("caller", CALLERS.values(), ids=CALLERS.keys())
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINTS.keys())
@pytest.mark.parametrize(
    "name", ["billion-laughs", "external-entity-file", "external-entity-http", "external-dtd", "parameter-entity"]
)
async def test_xml_bombs_and_external_references_in_an_answer_are_refused(make_gw, standin, caller, endpoint, name):
    gw = await make_gw(rules=RULES)
    doctype, value = answers(standin.port)[name]
    method, path, template = ENDPOINTS[endpoint]
    body = f'<?xml version="1.0" encoding="UTF-8"?>{doctype}{template.format(x=value)}'.encode()
    standin.reply = lambda seen: Reply(200, XML, body)
    data = GET_LEADS if method == "POST" else None
    resp = await gw.request(method, path, data=data, headers={**bearer(caller), **dict(XML)})
    text = await resp.text()
    assert resp.status == 502 and "obligation-unenforceable" in text, text
    assert "lol" not in text and "root:" not in text
    assert [seen.path for seen in standin.seen] == [path]  # the gateway fetched nothing else


@pytest.mark.parametrize(("caller", "kept"), [("carol", False), ("grace", True)])
async def test_a_well_formed_answer_from_the_same_stand_in_passes(make_gw, standin, caller, kept):
    gw = await make_gw(rules=RULES)
    standin.reply = lambda seen: Reply(200, XML, ENDPOINTS["soap"][2].format(x="1").encode())
    resp = await gw.post("/soap/", data=GET_LEADS, headers={**bearer(caller), **dict(XML)})
    assert resp.status == 200 and ("<lead><id>1</id></lead>" in await resp.text()) is kept  # no owner: not carol's
