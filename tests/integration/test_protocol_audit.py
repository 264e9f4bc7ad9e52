"""Protocol and audit truth: every request leaves exactly one audit line that says what happened.

* HTTP versions other than 1.0/1.1 (HTTP/0.9 included) are refused, whether aiohttp's parser lets
  them through (0.9, 2.0: refused by gateway.protocol) or refuses them itself (1.2, FOO/1.1);
* requests aiohttp answers before any handler runs (parser errors, ``CONNECT host:port``,
  ``OPTIONS *``, a header over 8190 bytes) are audited: deny, a code, the client, 400, a request id;
* a client that hangs up while sending its body is ``client-disconnected``, not a 500;
* a request timeout's line carries 504 and the request id the client was given.

The hang-up and timeout cases run the gateway the way ``crmgw serve`` does (gateway.server.start:
no handler cancellation on disconnect, the timeout middleware); pytest-aiohttp's test server cancels
handlers on disconnect, which takes another code path (checked too).
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from aiohttp import web

from democrm.app import REQUESTS_SEEN
from gateway.server import ServeOptions, start
from tests.conftest import RULES
from tests.integration.conftest import auth, gateway_settings
from tests.integration.rawhttp import get, raw_request

TOKEN = auth("grace", mfa=True)["Authorization"]  # an administrator: a well-formed request is allowed
REQUEST_ID = re.compile(r"^[0-9a-f]{16}$")


def audit(tmp_path) -> list[dict]:
    path = tmp_path / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def audited(tmp_path, count: int = 1, timeout: float = 5.0) -> list[dict]:
    """The audit lines once ``count`` are there (some are written after the answer is sent)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(lines := audit(tmp_path)) < count and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return lines


def assert_refusal(line: dict, reason: str, status: int = 400) -> None:
    assert line["effect"] == "deny" and line["reason"] == reason and line["status"] == status
    assert line["client_ip"] == "127.0.0.1" and REQUEST_ID.match(line["request_id"])
    assert line["user"] is None and line["upstream_status"] is None


def request_line(version: bytes) -> bytes:
    return b"GET /api/customers/1 " + version + b"\r\nHost: gateway\r\nAuthorization: " + TOKEN.encode() + b"\r\n\r\n"


VERSIONS = {
    # what llhttp accepts and gateway.protocol refuses: the answer is the gateway's JSON with its id
    "http-0.9-implicit": (b"GET /api/customers/1\r\nAuthorization: " + TOKEN.encode() + b"\r\n\r\n", True),
    "http-0.9": (request_line(b"HTTP/0.9"), True),
    "http-2.0": (request_line(b"HTTP/2.0"), True),
    # what llhttp refuses itself (aiohttp's plain-text 400): audited through the access-log hook
    "http-1.2": (request_line(b"HTTP/1.2"), False),
    "http-3.0": (request_line(b"HTTP/3.0"), False),
}


@pytest.mark.parametrize(("raw", "by_gateway"), VERSIONS.values(), ids=VERSIONS.keys())
async def test_http_versions_other_than_1_0_and_1_1_are_refused_and_audited(
    make_gateway, crm, tmp_path, raw, by_gateway
):
    gw = await make_gateway(crm)
    status, body = await raw_request(gw.port, raw)
    assert status == 400 and list(crm.app[REQUESTS_SEEN]) == []
    (line,) = await audited(tmp_path)
    assert_refusal(line, "http-version-unsupported")
    if by_gateway:  # the client can quote the id of the audit line
        assert json.loads(body) == {
            "error": "bad-request",
            "reason": "http-version-unsupported",
            "request_id": line["request_id"],
        }
        assert line["method"] == "GET" and line["path"] == "/api/customers/1"


async def test_http_1_0_is_still_served(make_gateway, crm, tmp_path):
    gw = await make_gateway(crm)
    status, _ = await raw_request(gw.port, request_line(b"HTTP/1.0"))
    assert status == 200 and len(crm.app[REQUESTS_SEEN]) == 1
    assert [line["status"] for line in audit(tmp_path)] == [200]


def with_token(*lines: bytes, body: bytes = b"") -> bytes:
    head = [lines[0], b"Host: gateway", b"Authorization: " + TOKEN.encode(), *lines[1:]]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


REFUSED_BEFORE_ANY_HANDLER = {
    "bad-header-line": (with_token(b"GET /api/customers/1 HTTP/1.1", b"Bad Header: x"), "header-invalid"),
    "space-before-colon": (with_token(b"GET /api/customers/1 HTTP/1.1", b"X-CRM-User : grace"), "header-invalid"),
    "obs-fold": (with_token(b"GET /api/customers/1 HTTP/1.1", b"X-A: a", b" X-CRM-User: grace"), "header-invalid"),
    "header-too-long": (with_token(b"GET /api/customers/1 HTTP/1.1", b"X-Long: " + b"a" * 9000), "line-too-long"),
    "request-line-too-long": (with_token(b"GET /api/customers/" + b"1" * 9000 + b" HTTP/1.1"), "line-too-long"),
    "too-many-headers": (
        with_token(b"GET /api/customers/1 HTTP/1.1", *(b"X-%d: a" % i for i in range(200))),
        "too-many-headers",
    ),
    "bad-chunk-size": (
        with_token(
            b"POST /api/customers HTTP/1.1",
            b"Content-Type: application/json",
            b"Transfer-Encoding: chunked",
            body=b"zz\r\n{}\r\n0\r\n\r\n",
        ),
        "body-framing-invalid",
    ),
    "cl-and-te": (
        with_token(
            b"POST /api/customers HTTP/1.1",
            b"Content-Length: 2",
            b"Transfer-Encoding: chunked",
            body=b"2\r\n{}\r\n0\r\n\r\n",
        ),
        "body-framing-invalid",
    ),
    "two-content-lengths": (
        with_token(b"POST /api/customers HTTP/1.1", b"Content-Length: 2", b"Content-Length: 3", body=b"{} "),
        "body-framing-invalid",
    ),
    "bad-method": (with_token(b"G@T /api/customers/1 HTTP/1.1"), "method-invalid"),
    "foo-protocol": (with_token(b"GET /api/customers/1 FOO/1.1"), "request-line-invalid"),
    "tls-client-hello": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32, "tls-on-plain-port"),
    # routed by aiohttp to its own 404 before: refused by gateway.protocol now
    "connect-authority-form": (with_token(b"CONNECT crm.internal:443 HTTP/1.1"), "target-authority-form"),
    "options-asterisk": (with_token(b"OPTIONS * HTTP/1.1"), "target-asterisk-form"),
}


@pytest.mark.parametrize(("raw", "reason"), REFUSED_BEFORE_ANY_HANDLER.values(), ids=REFUSED_BEFORE_ANY_HANDLER.keys())
async def test_requests_refused_before_the_pipeline_leave_an_audit_line(make_gateway, crm, tmp_path, raw, reason):
    gw = await make_gateway(crm)
    status, _ = await raw_request(gw.port, raw)
    assert status == 400 and list(crm.app[REQUESTS_SEEN]) == []
    (line,) = await audited(tmp_path)
    assert_refusal(line, reason)


async def test_a_parser_refusal_after_a_served_request_gets_its_own_line(make_gateway, crm, tmp_path):
    """Keep-alive: the first request is served and audited, the broken second one is audited too."""
    gw = await make_gateway(crm)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(with_token(b"GET /api/customers/1 HTTP/1.1"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        writer.write(b"GET /api/customers/1 HTTP/1.1\r\nBad Header: x\r\n\r\n")
        rest = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    assert b"HTTP/1.0 400 Bad Request" in rest
    first, second = await audited(tmp_path, 2)
    assert first["status"] == 200 and first["effect"] == "allow"
    assert_refusal(second, "header-invalid")
    assert second["request_id"] != first["request_id"]


# --- the way `crmgw serve` runs: gateway.server.start ----------------------------------------------
@pytest.fixture
async def serve(tmp_path):
    """``await serve(upstream_url, **ServeOptions)`` -> port of a gateway started like ``crmgw serve``."""
    runners: list[web.AppRunner] = []

    async def factory(upstream_url: str, **options) -> int:
        settings = gateway_settings(upstream_url, tmp_path, RULES, listen={"host": "127.0.0.1", "port": 0})
        runner = await start(settings, ServeOptions.resolve(settings, **options))
        runners.append(runner)
        return runner.addresses[0][1]

    yield factory
    for runner in runners:
        await runner.cleanup()


def post_head(extra: bytes) -> bytes:
    return (
        b"POST /api/customers HTTP/1.1\r\nHost: gateway\r\nAuthorization: "
        + TOKEN.encode()
        + b"\r\nContent-Type: application/json\r\n"
        + extra
        + b"\r\n"
    )


HANG_UPS = {
    "content-length": post_head(b"Content-Length: 100\r\n") + b'{"name": "half',
    "chunked": post_head(b"Transfer-Encoding: chunked\r\n") + b'5\r\n{"na"\r\n',
}


@pytest.mark.slow  # over a second
@pytest.mark.parametrize("raw", HANG_UPS.values(), ids=HANG_UPS.keys())
@pytest.mark.parametrize("server", ["crmgw-serve", "test-server"])
async def test_a_client_hanging_up_mid_body_is_audited_as_client_disconnected(
    serve, make_gateway, crm, tmp_path, raw, server
):
    crm_url = str(crm.make_url("")).rstrip("/")
    port = await serve(crm_url) if server == "crmgw-serve" else (await make_gateway(crm)).port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    await asyncio.sleep(0.3)  # the request is decided and its body read has begun
    writer.close()
    await writer.wait_closed()
    (line,) = await audited(tmp_path)
    assert line["reason"] == "client-disconnected" and line["status"] is None and line["user"] == "grace"
    assert line["upstream_status"] is None and list(crm.app[REQUESTS_SEEN]) == []


def slow_crm(seconds: float) -> web.Application:
    async def customer(request: web.Request) -> web.Response:
        await asyncio.sleep(seconds)
        return web.json_response({"id": 1, "owner_id": "alice", "team": "east", "region": "emea"})

    app = web.Application()
    app.router.add_get("/api/customers/{id}", customer)
    return app


async def test_a_request_timeout_is_audited_with_504_and_the_id_the_client_got(serve, aiohttp_server, tmp_path):
    slow = await aiohttp_server(slow_crm(5.0))
    port = await serve(str(slow.make_url("")).rstrip("/"), request_timeout=0.5)
    status, body = await raw_request(port, get("/api/customers/1", {"Authorization": TOKEN}))
    assert status == 504
    answer = json.loads(body)
    (line,) = await audited(tmp_path)
    assert answer == {"error": "gateway-timeout", "reason": "request-timeout", "request_id": line["request_id"]}
    assert line["status"] == 504 and line["reason"] == "request-timeout" and line["effect"] == "deny"


async def test_a_chunk_error_after_the_body_read_began_ends_as_an_audited_timeout(serve, crm, tmp_path):
    """llhttp drops a body whose framing breaks mid-way without telling the reader (aiohttp 3.14):
    the request cannot end sooner than ``limits.request_timeout``, but it ends audited, and the CRM
    receives nothing."""
    port = await serve(str(crm.make_url("")).rstrip("/"), request_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(post_head(b"Transfer-Encoding: chunked\r\n"))
        await writer.drain()
        await asyncio.sleep(0.2)  # decided; the pipeline waits for the body
        writer.write(b"zz\r\n{}\r\n0\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 504")
    (line,) = await audited(tmp_path)
    assert line["status"] == 504 and line["reason"] == "request-timeout" and list(crm.app[REQUESTS_SEEN]) == []
