"""What reaches the CRM is an allow-list, and the client address comes from one named header.

The real gateway in front of the real demo CRM; ``REQUESTS_SEEN`` is what the CRM received, raw
header names included, so a header that slipped through (in any spelling) is seen.
"""

from __future__ import annotations

import json

import pytest

from democrm.app import REQUESTS_SEEN
from tests.integration.conftest import CRM_TOKEN, auth
from tests.integration.rawhttp import get, raw_request

# Headers a CRM or the framework under it may act on (rewrites, identities, addresses), in the
# spellings clients use to get them past a proxy; none is standard, so none may reach the CRM.
SPOOFED = {
    "X-Forwarded-Uri": "/api/admin/users",
    "X-Envoy-Original-Path": "/api/admin/users",
    "X-Original-URL": "/api/admin/users",
    "X-Rewrite-URL": "/api/admin/users",
    "X-Original-Method": "DELETE",
    "X-Forwarded-Host": "admin.crm.internal",
    "X-Forwarded-Prefix": "/admin",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "443",
    "X-Forwarded-For": "10.1.2.3",
    "Forwarded": "for=10.1.2.3;host=admin.crm.internal;proto=https",
    "X-Real-IP": "10.1.2.3",
    "True-Client-IP": "10.1.2.3",
    "Client-IP": "10.1.2.3",
    "X-Client-IP": "10.1.2.3",
    "X-Cluster-Client-IP": "10.1.2.3",
    "CF-Connecting-IP": "10.1.2.3",
    "X-User": "grace",
    "Remote-User": "grace",
    "X-Remote-User": "grace",
    "X-Forwarded-User": "grace",
    "X_CRM_User": "grace",
    "X_Forwarded_For": "10.1.2.3",
    "X-Whatever": "anything",
    "If-None-Match": "*",
    "Range": "bytes=10-",
    "Date": "Tue, 03 Mar 2026 09:00:00 GMT",
}
# Everything the CRM may receive: aiohttp's framing, the allow-listed standard headers the client
# sent, the operator's X-Tenant, and what the gateway writes itself.
MAY_ARRIVE = {
    "host",
    "content-length",
    "accept",
    "accept-language",
    "accept-encoding",
    "user-agent",
    "x-tenant",
    "x-crm-user",
    "x-crm-roles",
    "x-request-id",
    "x-forwarded-for",
    "authorization",
}


def audit(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]


async def test_spoofable_headers_never_reach_the_crm_but_operator_named_ones_do(make_gateway, crm, tmp_path):
    gw = await make_gateway(crm, trusted_proxies=[], upstream={"forward_headers": ["X-Tenant"]})
    headers = {
        **auth("grace", mfa=True),
        **SPOOFED,
        "X-Tenant": "emea",
        "Accept": "application/json",
        "Accept-Language": "fr",
        "User-Agent": "pytest",
    }
    status, body = await raw_request(gw.port, get("/api/customers/1", headers))
    assert status == 200, body
    (seen,) = crm.app[REQUESTS_SEEN]
    names = [name.lower() for name, _ in seen.raw_headers]
    assert set(names) <= MAY_ARRIVE, set(names) - MAY_ARRIVE
    assert len(names) == len(set(names))  # every header exactly once
    assert seen.header("X-Tenant") == "emea" and seen.header("Accept-Language") == "fr"
    assert seen.header("X-CRM-User") == "grace"
    assert seen.header("X-Forwarded-For") == "127.0.0.1"  # the address the gateway resolved, not 10.1.2.3
    assert seen.header("Authorization") == f"Bearer {CRM_TOKEN}"  # the service credential, not the JWT
    assert seen.header("Host") == f"127.0.0.1:{crm.port}"
    assert audit(tmp_path)[-1]["client_ip"] == "127.0.0.1"


async def test_without_forward_headers_an_operator_header_is_dropped_too(make_gateway, crm):
    gw = await make_gateway(crm)
    status, _ = await raw_request(gw.port, get("/api/customers/1", {**auth("grace", mfa=True), "X-Tenant": "emea"}))
    assert status == 200
    (seen,) = crm.app[REQUESTS_SEEN]
    assert seen.header("X-Tenant") is None


OFFICE, OUTSIDE = "10.1.2.3", "203.0.113.9"


@pytest.mark.parametrize(
    ("named", "sent", "client", "status"),
    [
        # a proxy that writes Forwarded passes the client's own X-Forwarded-For through: ignored
        ("Forwarded", {"X-Forwarded-For": OFFICE, "Forwarded": f"for={OUTSIDE}"}, OUTSIDE, 403),
        ("Forwarded", {"X-Forwarded-For": OUTSIDE, "Forwarded": f"for={OFFICE}"}, OFFICE, 200),
        # and the other way round: a proxy that writes X-Forwarded-For, a client's Forwarded
        ("X-Forwarded-For", {"X-Forwarded-For": OUTSIDE, "Forwarded": f"for={OFFICE}"}, OUTSIDE, 403),
        ("X-Forwarded-For", {"X-Forwarded-For": OFFICE, "Forwarded": f"for={OUTSIDE}"}, OFFICE, 200),
        ("X-Real-IP", {"X-Real-IP": OFFICE, "X-Forwarded-For": OUTSIDE, "Forwarded": f"for={OUTSIDE}"}, OFFICE, 200),
        ("X-Real-IP", {"X-Real-IP": OUTSIDE, "X-Forwarded-For": OFFICE, "Forwarded": f"for={OFFICE}"}, OUTSIDE, 403),
        # the named header absent: the trusted peer itself (loopback, an office network)
        ("X-Real-IP", {"X-Forwarded-For": OUTSIDE, "Forwarded": f"for={OUTSIDE}"}, "127.0.0.1", 200),
    ],
)
async def test_client_address_is_read_from_the_named_header_only(
    make_gateway, crm, tmp_path, named, sent, client, status
):
    gw = await make_gateway(crm, client_address_header=named)  # 127.0.0.1 is a trusted proxy here
    got, body = await raw_request(gw.port, get("/api/customers/1", {**auth("grace", mfa=True), **sent}))
    assert got == status, body
    line = audit(tmp_path)[-1]
    assert line["client_ip"] == client
    seen = list(crm.app[REQUESTS_SEEN])
    if status == 403:
        assert seen == [] and "baseline-deny-unlisted-networks" in line["rules"]
    else:
        (request,) = seen
        assert request.header("X-Forwarded-For") == client
        assert request.header("Forwarded") is None and request.header("X-Real-IP") is None
