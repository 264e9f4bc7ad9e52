"""Header hygiene: only allow-listed client headers reach the CRM; hop-by-hop never crosses the gateway."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.upstream.headers import (
    FORWARDED_BY_DEFAULT,
    NEVER_FORWARDED,
    accept_encoding,
    client_response_headers,
    upstream_request_headers,
)

GATEWAY_READS = ("x-authenticated-user", "authorization", "x-api-key")


def out(client, *, keep_credential=False, strip=GATEWAY_READS, forward=(), add=None):
    return upstream_request_headers(
        CIMultiDict(client),
        strip=strip,
        keep_credential=keep_credential,
        add={"X-CRM-User": "alice"} if add is None else add,
        forward=forward,
    )


def client_names(headers) -> set[str]:
    """The names in ``headers`` that came from the client (not added by the gateway)."""
    return {n.lower() for n in headers} - {"x-crm-user", "accept-encoding"}


# Headers some CRM or framework acts on: none of them is standard, so none is on the allow-list.
NOT_ALLOWED = [
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Prefix",
    "X-Forwarded-Uri",
    "Forwarded",
    "X-Real-IP",
    "Client-IP",
    "X-Cluster-Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Envoy-Original-Path",
    "X-User",
    "Remote-User",
    "X-Remote-User",
    "X-HTTP-Method-Override",
    "Transfer-Encoding",
    "Proxy-Authorization",
    "Upgrade",
    "TE",
    "Keep-Alive",
    "X-Authenticated-User",
    "X-API-Key",
    "Authorization",
    "Cookie",
    "Host",
    "Content-Length",
    "Expect",
    "X-Request-Id",
    "X-Whatever",
    "Origin",
    "Referer",
    "Date",
]


@pytest.mark.parametrize("name", NOT_ALLOWED)
def test_headers_off_the_allow_list_are_dropped(name):
    assert client_names(out({name: "evil", "Accept": "application/json"})) == {"accept"}


@pytest.mark.parametrize("name", sorted(FORWARDED_BY_DEFAULT))
def test_standard_negotiation_and_entity_headers_are_forwarded(name):
    assert out({name: "x"})[name] == "x"


@pytest.mark.parametrize(
    "name",
    ["If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "Range", "If-Range", "Content-Encoding"],
)
def test_headers_that_let_the_crm_answer_without_a_checkable_record_are_dropped(name):
    """A 304/412 or a partial body carries no record the filter can check (and 304 vs 404 is an
    existence oracle); an encoding label would describe bytes aiohttp already inflated."""
    assert client_names(out({name: "*" if name.startswith("If") else "bytes=100-"})) == set()


def test_operator_named_headers_are_forwarded():
    headers = out({"X-Tenant": "emea", "x-csrf-token": "t", "X-Other": "no"}, forward=("X-Tenant", "X-CSRF-Token"))
    assert headers["X-Tenant"] == "emea" and headers["X-CSRF-Token"] == "t" and "X-Other" not in headers


def test_operator_list_cannot_forward_a_never_forwarded_header_even_unvalidated():
    """Settings refuse these names; the header code refuses them again (defence in depth)."""
    client = {
        "X-Forwarded-Host": "evil",
        "Authorization": "Bearer x",
        "Range": "bytes=1-",
        "Transfer-Encoding": "chunked",
    }
    assert client_names(out(client, forward=tuple(client))) == set()
    assert {"x-forwarded-host", "authorization", "range", "transfer-encoding"} <= NEVER_FORWARDED.keys()


def test_operator_list_cannot_forward_what_the_gateway_reads_or_writes():
    headers = out({"X-API-Key": "k", "X-CRM-User": "grace"}, forward=("X-API-Key", "X-CRM-User"))
    assert "X-API-Key" not in headers and headers.getall("X-CRM-User") == ["alice"]


def test_operator_headers_pass_only_when_named():
    client = CIMultiDict({"X-Tenant": "emea"})
    kwargs = {"strip": (), "keep_credential": False, "add": {}}
    assert "X-Tenant" not in upstream_request_headers(client, **kwargs)  # fail closed by default
    assert upstream_request_headers(client, forward=("X-Tenant",), **kwargs)["X-Tenant"] == "emea"


def test_headers_named_in_connection_are_dropped_even_when_allowed():
    headers = out(
        {
            "Connection": "keep-alive, X-Tenant, accept_language",
            "X-Tenant": "1",
            "Accept-Language": "fr",
            "Accept": "text/csv",
        },
        forward=("X-Tenant",),
    )
    assert client_names(headers) == {"accept"}


def test_gateway_identity_overrides_a_client_copy():
    assert out({"x-crm-user": "grace"}).getall("X-CRM-User") == ["alice"]


def test_crm_credential_is_kept_when_the_caller_used_it():
    headers = out({"Authorization": "Bearer crmpat-alice", "Cookie": "s=1"}, keep_credential=True)
    assert headers["Authorization"] == "Bearer crmpat-alice" and headers["Cookie"] == "s=1"


def test_gateway_credential_replaces_the_callers_when_it_did_not_use_the_crms_login():
    headers = out({"Authorization": "Bearer gateway-jwt", "Cookie": "s=1"}, add={"Authorization": "Bearer service"})
    assert headers.getall("Authorization") == ["Bearer service"] and "Cookie" not in headers


def test_only_the_first_content_type_is_forwarded():
    """The gateway reads the first copy (aiohttp's request.content_type); the CRM must see that one."""
    client = CIMultiDict([("Content-Type", "application/json"), ("Content-Type", "application/x-www-form-urlencoded")])
    headers = upstream_request_headers(client, strip=(), keep_credential=False, add={})
    assert headers.getall("Content-Type") == ["application/json"]


@pytest.mark.parametrize(
    ("client", "upstream"),
    [(None, "identity"), ("br", "identity"), ("gzip, br", "gzip"), ("deflate, gzip;q=0", "deflate"), ("*", "identity")],
)
def test_accept_encoding_is_limited_to_what_the_filter_decodes(client, upstream):
    assert accept_encoding(client) == upstream


def test_response_headers_lose_encoding_and_length_when_rewritten():
    up = CIMultiDict(
        {"Content-Encoding": "gzip", "Content-Length": "10", "ETag": "x", "Set-Cookie": "a=1", "Connection": "close"}
    )
    rewritten = client_response_headers(up, body_rewritten=True)
    assert set(rewritten) == {"Set-Cookie"}
    streamed = client_response_headers(up, body_rewritten=False)
    assert streamed["Content-Encoding"] == "gzip" and "Content-Length" not in streamed


@pytest.mark.parametrize(
    "name",
    [
        "X_CRM_User",
        "x_crm_user",
        "X-CRM_User",
        "X_Authenticated_User",
        "X_Forwarded_For",
        "Transfer_Encoding",
        "X_Real_IP",
        "Accept_Language",
        "Content_Type",
        "X_Tenant",
    ],
)
def test_a_header_name_with_an_underscore_is_never_forwarded(name):
    """To a CGI/WSGI CRM ``Accept_Language`` is a second ``Accept-Language``: it would pick one."""
    headers = out({name: "grace", "Accept-Language": "fr"}, forward=("X-Tenant",))
    assert client_names(headers) == {"accept-language"} and headers.getall("X-CRM-User") == ["alice"]


def test_crm_credential_named_in_connection_still_reaches_the_crm():
    """The credential exemption wins over Connection, as before the allow-list."""
    client = {"Connection": "Authorization", "Authorization": "Bearer crmpat-alice"}
    assert out(client, keep_credential=True, strip=())["Authorization"] == "Bearer crmpat-alice"
    assert "Authorization" not in out(client, keep_credential=False, strip=())
