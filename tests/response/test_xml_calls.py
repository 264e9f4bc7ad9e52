"""A SOAP call decided before forwarding: the body must be exactly the declared call, for everyone."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.context.catalogue import load_catalogue
from gateway.errors import GatewayError
from gateway.identity.directory import Directory
from gateway.model import Identity, User
from gateway.response.writes import check_request_body
from gateway.upstream.bodies import RequestBody

CATALOGUE = """\
format: crmgw.rules/v1
resources:
  leads:
    scope:
      own: {field: "assigned_to[].id", identity: crm_profile_id}
    writes:
      people:
        - {fields: [assigned_to], ids: [crm_profile_id]}
endpoints:
  - method: POST
    path: /soap/
    operation: leads.list
    format: xml
    records: ["Envelope.Body.GetLeadsResponse.lead[]"]
    body: {media: [xml], records: [Envelope.Body.GetLeads], writable: [page, limit, assigned_to]}
"""
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
ANN = User(
    id="ann",
    roles=frozenset({"rep"}),
    effective_roles=frozenset({"rep"}),
    team="east",
    attributes={"crm_profile_id": "P-ann"},
)
BEN = User(id="ben", team="east", attributes={"crm_profile_id": "P-ben"})
DIRECTORY = Directory(users={"ann": ANN, "ben": BEN}, roles={}, api_keys={}, crm_tokens={})


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    path = Path(tmp_path_factory.mktemp("rules")) / "operations.yaml"
    path.write_text(textwrap.dedent(CATALOGUE))
    catalogue, errors = load_catalogue(path)
    assert errors == [], [str(e) for e in errors]
    return catalogue.match("POST", "/soap/")[0]


def envelope(body: str, header: str = "") -> bytes:
    return (
        f'<soap:Envelope xmlns:soap="{SOAP}" xmlns:c="urn:crm">{header}<soap:Body>{body}</soap:Body></soap:Envelope>'
    ).encode()


def decide(endpoint, body: bytes, *, scope="own", ctype="text/xml; charset=utf-8") -> None:
    check_request_body(endpoint, "POST", scope, Identity(ANN, "jwt"), DIRECTORY, {}, RequestBody(body, ctype))


@pytest.mark.parametrize("scope", ["own", "all"])
@pytest.mark.parametrize(
    "body",
    [
        envelope("<c:GetLeads/>"),
        envelope("<c:GetLeads><c:page>2</c:page><c:limit>50</c:limit></c:GetLeads>"),
        envelope("<GetLeads><assigned_to>P-ann</assigned_to></GetLeads>"),
        b'<?xml version="1.0" encoding="utf-8"?>\n' + envelope("\n  <c:GetLeads>\n  </c:GetLeads>\n"),
    ],
)
def test_the_declared_call_passes(endpoint, body, scope):
    decide(endpoint, body, scope=scope)


@pytest.mark.parametrize("scope", ["own", "all"])
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (envelope("<c:DeleteLead><c:id>1</c:id></c:DeleteLead>"), "body-undeclared"),
        (envelope("<c:GetLeads/><c:DeleteLead><c:id>1</c:id></c:DeleteLead>"), "body-undeclared"),
        (envelope("<c:GetLeads/><c:GetLeads/>"), "body-undeclared"),
        (envelope("<c:GetLeads/>", header="<soap:Header><c:RunAs>admin</c:RunAs></soap:Header>"), "body-undeclared"),
        (envelope("<c:GetLeads/>").replace(b"<soap:Body>", b'<soap:Body c:op="DeleteLead">'), "body-undeclared"),
        (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + envelope("<c:GetLeads/>"),
            "body-unreadable",
        ),
        (envelope("<c:GetLeads>1<c:page>2</c:page></c:GetLeads>"), "body-unreadable"),
        (envelope("<c:GetLeads/>").replace(b"soap:Body", b"soap:Bdy"), "body-undeclared"),
        (envelope("<c:GetLeads>all</c:GetLeads>"), "body-unreadable"),
        (b"GetLeads", "body-unreadable"),
    ],
)
def test_anything_but_the_declared_call_is_refused_for_everyone(endpoint, body, reason, scope):
    with pytest.raises(GatewayError) as caught:
        decide(endpoint, body, scope=scope)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("ctype", "reason"),
    [
        ("application/json", "body-media-undeclared"),
        ("text/xml; charset=iso-8859-1", "body-unreadable"),
        ('application/soap+xml; charset=utf-8; action="urn:crm/DeleteLead"', "body-undeclared"),
        ('application/soap+xml; action="urn:crm/NotGetLeads"', "body-undeclared"),
    ],
)
def test_the_content_type_must_be_xml_and_name_the_same_call(endpoint, ctype, reason):
    with pytest.raises(GatewayError) as caught:
        decide(endpoint, envelope("<c:GetLeads/>"), scope="all", ctype=ctype)
    assert caught.value.reason == reason
    decide(endpoint, envelope("<c:GetLeads/>"), ctype='application/soap+xml; action="urn:crm/GetLeads"')


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        ("<c:GetLeads><c:includeAll>true</c:includeAll></c:GetLeads>", "field-not-writable"),
        ('<c:GetLeads as="admin"/>', "field-not-writable"),
        ("<c:GetLeads><c:assigned_to>P-ben</c:assigned_to></c:GetLeads>", "write-out-of-scope"),
    ],
)
def test_a_restricted_caller_sends_only_the_declared_parameters(endpoint, call, reason):
    with pytest.raises(GatewayError) as caught:
        decide(endpoint, envelope(call))
    assert caught.value.reason == reason
    decide(endpoint, envelope(call), scope="all")  # the call is the declared one: unrestricted callers pass


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{media: [xml, json], records: [Envelope.Body.GetLeads]}", "media [xml] alone"),
        ('{media: [xml], records: ["$"]}', "media [xml] alone"),
        ('{media: [xml], records: ["Envelope.Body.calls[]"]}', "media [xml] alone"),
    ],
)
def test_the_catalogue_refuses_xml_bodies_that_are_not_one_call(tmp_path, body, message):
    path = tmp_path / "operations.yaml"
    declared = "{media: [xml], records: [Envelope.Body.GetLeads], writable: [page, limit, assigned_to]}"
    path.write_text(CATALOGUE.replace(declared, body))
    catalogue, errors = load_catalogue(path)
    assert catalogue is None and any(message in str(e) for e in errors), [str(e) for e in errors]


@pytest.mark.parametrize("records", ["$", "lead[]"])
def test_the_catalogue_refuses_xml_records_that_are_not_under_one_root(tmp_path, records):
    path = tmp_path / "operations.yaml"
    path.write_text(CATALOGUE.replace('records: ["Envelope.Body.GetLeadsResponse.lead[]"]', f'records: ["{records}"]'))
    catalogue, errors = load_catalogue(path)
    assert catalogue is None and any("xml records name elements from the one root" in str(e) for e in errors)
