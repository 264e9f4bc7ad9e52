"""Header hygiene: nothing spoofable reaches the CRM; hop-by-hop never crosses the gateway."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.upstream.headers import accept_encoding, client_response_headers, upstream_request_headers


def out(client: dict, *, keep_credential=False, strip=("x-authenticated-user", "authorization", "x-api-key")):
    return upstream_request_headers(
        CIMultiDict(client), strip=strip, keep_credential=keep_credential, add={"X-CRM-User": "alice"}
    )


@pytest.mark.parametrize(
    "name",
    [
        "X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Real-IP", "X-Original-URL",
        "X-HTTP-Method-Override", "Transfer-Encoding", "Proxy-Authorization", "Upgrade", "TE",
        "X-Authenticated-User", "X-API-Key", "Authorization", "Cookie", "Host", "X-Request-Id",
    ],
)
def test_spoofable_and_hop_by_hop_headers_are_dropped(name):
    assert name not in out({name: "evil", "Accept": "application/json"})


def test_headers_named_in_connection_are_dropped():
    headers = out({"Connection": "keep-alive, X-Secret", "X-Secret": "1", "X-Other": "2"})
    assert "X-Secret" not in headers and headers["X-Other"] == "2"


def test_gateway_identity_overrides_a_client_copy():
    assert out({"x-crm-user": "grace"}).getall("X-CRM-User") == ["alice"]


def test_crm_credential_is_kept_when_the_caller_used_it():
    headers = out({"Authorization": "Bearer crmpat-alice", "Cookie": "s=1"}, keep_credential=True, strip=())
    assert headers["Authorization"] == "Bearer crmpat-alice" and headers["Cookie"] == "s=1"


@pytest.mark.parametrize(
    ("client", "upstream"),
    [(None, "identity"), ("br", "identity"), ("gzip, br", "gzip"), ("deflate, gzip;q=0", "deflate"), ("*", "identity")],
)
def test_accept_encoding_is_limited_to_what_the_filter_decodes(client, upstream):
    assert accept_encoding(client) == upstream


def test_response_headers_lose_encoding_and_length_when_rewritten():
    up = CIMultiDict({"Content-Encoding": "gzip", "Content-Length": "10", "ETag": "x", "Set-Cookie": "a=1", "Connection": "close"})
    rewritten = client_response_headers(up, body_rewritten=True)
    assert set(rewritten) == {"Set-Cookie"}
    streamed = client_response_headers(up, body_rewritten=False)
    assert streamed["Content-Encoding"] == "gzip" and "Content-Length" not in streamed


@pytest.mark.parametrize("name", ["X_CRM_User", "x_crm_user", "X-CRM_User", "X_Authenticated_User", "X_Forwarded_For",
                                  "Transfer_Encoding", "X_Real_IP"])
def test_underscore_spellings_a_cgi_server_folds_into_a_stripped_header_are_dropped(name):
    headers = out({name: "grace", "X_Other_Thing": "kept"})
    assert name not in headers and headers.getall("X-CRM-User") == ["alice"]
    assert headers["X_Other_Thing"] == "kept"  # underscores alone are not refused


def test_connection_tokens_are_folded_too():
    assert "X_Secret" not in out({"Connection": "x-secret", "X_Secret": "1"})


@pytest.mark.parametrize("name", ["Range", "If-Range", "Content-Encoding"])
def test_headers_that_change_the_body_the_gateway_checked_are_dropped(name):
    assert name not in out({name: "bytes=100-" if "Range" in name else "gzip"})


def test_crm_credential_named_in_connection_still_reaches_the_crm():
    """The cached strip list keeps the old order: the credential exemption wins over Connection."""
    client = {"Connection": "Authorization", "Authorization": "Bearer crmpat-alice"}
    assert out(client, keep_credential=True, strip=())["Authorization"] == "Bearer crmpat-alice"
    assert "Authorization" not in out(client, keep_credential=False, strip=())
