"""Request framing: smuggling and parser-differential tricks never smuggle a request past the rules.

Every case is a POST of a small JSON body by grace, with a framing trick, followed by a smuggled
anonymous ``GET /api/admin/users``. Whatever aiohttp's parser makes of it, the invariant is:

* the smuggled request never reaches the CRM (if it is parsed at all, it is decided on its own and
  refused as unauthenticated);
* the CRM sees at most the one POST, with a body the gateway decided on (the stand-in records the
  exact bytes), re-framed by the gateway with its own Content-Length.

Variants from PortSwigger's request-smuggling research, RFC 9112 §6.3 and the llhttp test suite.
The gateway refuses to start on aiohttp's pure-Python parser (gateway.server.require_c_parser);
these tests run on whichever parser the test server uses and check which one that is.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import http_parser

from tests.adversarial.conftest import GRACE
from tests.adversarial.wire import exchange

TOKEN = GRACE["Authorization"].encode()
BODY = b'{"name": "x"}'
SMUGGLED = b"GET /api/admin/users HTTP/1.1\r\nHost: gateway\r\n\r\n"
# After every case: a request that makes the server close the connection once it got that far.
SENTINEL = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n"


def post(*header_lines: bytes, body: bytes = BODY) -> bytes:
    head = [
        b"POST /api/customers HTTP/1.1",
        b"Host: gateway",
        b"Authorization: " + TOKEN,
        b"Content-Type: application/json",
        *header_lines,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


CASES = {
    "cl-cl-conflict": post(b"Content-Length: 13", b"Content-Length: 60", body=BODY + SMUGGLED),
    "cl-comma-list": post(b"Content-Length: 13, 60", body=BODY + SMUGGLED),
    "cl-plus-sign": post(b"Content-Length: +13", body=BODY + SMUGGLED),
    "cl-hex": post(b"Content-Length: 0xd", body=BODY + SMUGGLED),
    "cl-negative": post(b"Content-Length: -1", body=BODY + SMUGGLED),
    "cl-trailing-garbage": post(b"Content-Length: 13x", body=BODY + SMUGGLED),
    "cl-huge": post(b"Content-Length: 99999999999999999999999", body=BODY),
    "cl-te": post(b"Content-Length: 13", b"Transfer-Encoding: chunked", body=chunked(BODY) + SMUGGLED),
    "te-cl": post(b"Transfer-Encoding: chunked", b"Content-Length: 4", body=chunked(BODY) + SMUGGLED),
    "te-chunked-chunked": post(b"Transfer-Encoding: chunked, chunked", body=chunked(BODY) + SMUGGLED),
    "te-two-lines": post(b"Transfer-Encoding: chunked", b"Transfer-Encoding: identity", body=chunked(BODY) + SMUGGLED),
    "te-identity-chunked": post(b"Transfer-Encoding: identity, chunked", body=chunked(BODY) + SMUGGLED),
    "te-xchunked": post(b"Transfer-Encoding: xchunked", b"Content-Length: 13", body=BODY + SMUGGLED),
    "te-chunked-then-gzip": post(b"Transfer-Encoding: chunked, gzip", body=chunked(BODY) + SMUGGLED),
    "te-space-before-colon": post(b"Transfer-Encoding : chunked", b"Content-Length: 13", body=BODY + SMUGGLED),
    "te-tab-value": post(b"Transfer-Encoding:\tchunked", body=chunked(BODY) + SMUGGLED),
    "te-vertical-tab": post(b"Transfer-Encoding: \x0bchunked", b"Content-Length: 13", body=BODY + SMUGGLED),
    "te-underscore-name": post(b"Transfer_Encoding: chunked", b"Content-Length: 13", body=BODY + SMUGGLED),
    "te-obs-fold": post(b"Transfer-Encoding:", b" chunked", b"Content-Length: 13", body=BODY + SMUGGLED),
    "te-http10": post(b"Transfer-Encoding: chunked", body=chunked(BODY) + SMUGGLED).replace(
        b"HTTP/1.1", b"HTTP/1.0", 1
    ),
    "chunk-size-hex-prefix": post(b"Transfer-Encoding: chunked", body=b"0xd\r\n" + BODY + b"\r\n0\r\n\r\n" + SMUGGLED),
    "chunk-size-negative": post(b"Transfer-Encoding: chunked", body=b"-d\r\n" + BODY + b"\r\n0\r\n\r\n" + SMUGGLED),
    "chunk-size-overflow": post(b"Transfer-Encoding: chunked", body=b"1" + b"0" * 20 + b"\r\n" + BODY + SMUGGLED),
    "chunk-size-space": post(b"Transfer-Encoding: chunked", body=b"d \r\n" + BODY + b"\r\n0\r\n\r\n" + SMUGGLED),
    "chunk-ext-bare-lf": post(b"Transfer-Encoding: chunked", body=b"d;x\n" + BODY + b"\r\n0\r\n\r\n" + SMUGGLED),
    "chunk-missing-crlf": post(b"Transfer-Encoding: chunked", body=b"d\r\n" + BODY + b"0\r\n\r\n" + SMUGGLED),
    "chunk-too-long": post(b"Transfer-Encoding: chunked", body=b"3\r\n" + BODY + b"\r\n0\r\n\r\n" + SMUGGLED),
    "chunk-bare-lf-terminator": post(b"Transfer-Encoding: chunked", body=b"d\n" + BODY + b"\n0\n\n" + SMUGGLED),
    "obs-fold-identity": post(b"X-Foo: a", b" X-CRM-User: grace", body=BODY),
    "obs-fold-authorization": post(b"X-Bar: b", b"\tAuthorization: Bearer x", body=BODY),
    "bare-lf-headers": b"POST /api/customers HTTP/1.1\nHost: g\nAuthorization: "
    + TOKEN
    + b"\nContent-Type: application/json\nContent-Length: 13\n\n"
    + BODY
    + SMUGGLED,
    "bare-cr-in-header": post(b"X-Foo: a\rContent-Length: 60", b"Content-Length: 13", body=BODY + SMUGGLED),
    "nul-in-header-value": post(b"X-Foo: a\x00b", b"Content-Length: 13", body=BODY + SMUGGLED),
    "space-in-header-name": post(b"Content Length: 60", b"Content-Length: 13", body=BODY + SMUGGLED),
    "request-line-extra-space": post(body=BODY).replace(b"POST ", b"POST  ", 1),
    "request-line-http2": post(b"Content-Length: 13", body=BODY).replace(b"HTTP/1.1", b"HTTP/2.0", 1),
    "request-line-http09": b"GET /api/admin/users\r\n\r\n",
    "request-line-lowercase-version": b"GET /api/admin/users http/1.1\r\nHost: g\r\n\r\n",
}


@pytest.mark.parametrize("raw", CASES.values(), ids=CASES.keys())
async def test_framing_tricks_never_smuggle_a_request(gw, standin, raw):
    answer = await exchange(gw.port, raw + SENTINEL, timeout=2)
    assert all(seen.path != "/api/admin/users" for seen in standin.seen)
    assert len(standin.seen) <= 1
    for seen in standin.seen:
        assert seen.method == "POST" and seen.body in (BODY, b"")
        assert seen.headers("Content-Length") in ([str(len(seen.body))], [])
        assert seen.headers("Transfer-Encoding") == [] and seen.headers("X-CRM-User") == ["grace"]
    assert answer.status != 0 or standin.seen == []


async def test_pipelined_requests_are_decided_one_by_one(gw, standin):
    raw = (
        b"GET /api/admin/users HTTP/1.1\r\nHost: g\r\n\r\n"
        + b"GET /api/customers/1 HTTP/1.1\r\nHost: g\r\nAuthorization: "
        + TOKEN
        + b"\r\nConnection: close\r\n\r\n"
    )
    answer = await exchange(gw.port, raw, first_only=False)
    assert [s.path for s in standin.seen] == ["/api/customers/1"]
    assert answer.status == 401  # the first answer on the wire is the refusal of the anonymous request


@pytest.mark.parametrize("denied", [True, False], ids=["denied", "allowed"])
async def test_expect_100_continue(gw, standin, denied):
    """A request that will be denied must not reach the CRM whatever Expect says; the CRM never sees Expect."""
    token = b"Bearer nope" if denied else TOKEN
    head = (
        b"POST /api/customers HTTP/1.1\r\nHost: g\r\nAuthorization: "
        + token
        + b"\r\nContent-Type: application/json\r\nContent-Length: 13\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(head)
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        if first.startswith(b"HTTP/1.1 100"):
            writer.write(BODY)
            first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        status = int(first.split(b" ")[1])
    finally:
        writer.close()
    if denied:
        assert status == 401 and standin.seen == []
    else:
        assert status == 200 and standin.seen[0].body == BODY and standin.seen[0].headers("Expect") == []


async def test_denied_request_with_expect_gets_no_100_continue(gw, standin):
    head = (
        b"POST /api/customers HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\n"
        b"Content-Length: 13\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    answer = await exchange(gw.port, head, timeout=2)
    assert answer.interim == [] and answer.status == 401


def test_the_test_server_runs_the_c_parser():
    assert http_parser.HttpRequestParser is not http_parser.HttpRequestParserPy


def test_gateway_refuses_to_start_on_the_pure_python_parser(monkeypatch):
    from gateway.server import require_c_parser

    require_c_parser()  # the C parser is there: no complaint
    monkeypatch.setattr(http_parser, "HttpRequestParser", http_parser.HttpRequestParserPy)
    with pytest.raises(SystemExit, match="C HTTP parser"):
        require_c_parser()
