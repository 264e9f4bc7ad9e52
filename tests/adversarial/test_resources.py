"""Resource abuse: huge headers and bodies, slow clients, many connections -- bounded, never forwarded.

The limits: request line and each header field 8190 bytes, 128 header fields (aiohttp's parser, set
in gateway.app.create_app); request bodies ``limits.max_request_body_bytes`` (checked against
Content-Length before reading, and while reading a chunked body); response bodies
``limits.max_response_body_bytes`` (test_response_side.py).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.adversarial.conftest import GRACE
from tests.adversarial.wire import exchange, request

LIMIT = 4096


@pytest.mark.parametrize(
    "raw",
    [
        request("/api/customers", {**GRACE, "X-Big": "a" * 9000}),
        request("/api/customers", {**GRACE, **{f"X-H{i}": "v" for i in range(200)}}),
        request("/api/customers?" + "a" * 9000, GRACE),
        request("/api/customers/" + "1" * 9000, GRACE),
        request("/api/customers", [*GRACE.items(), *[("Cookie", "c" * 8000)] * 130]),
        request("/api/customers", [("X-" + "n" * 9000, "v"), *GRACE.items()]),
    ],
    ids=["header-value", "header-count", "query", "path", "129-large-cookies", "header-name"],
)
async def test_oversized_request_heads_are_refused(gw, standin, raw):
    answer = await exchange(gw.port, raw)
    assert answer.status in (400, 413, 414, 431) and standin.seen == []


BIG = b'{"name": "' + b"x" * (LIMIT * 2) + b'"}'


@pytest.mark.parametrize(
    "raw",
    [
        request("/api/customers", {**GRACE, "Content-Type": "application/json"}, method="POST", body=BIG),
        request(
            "/api/customers",
            {**GRACE, "Content-Type": "application/json", "Content-Length": str(10**12)},
            method="POST",
        ),
        request(
            "/api/customers",
            {**GRACE, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            method="POST",
            body=b"".join(b"400\r\n" + b"x" * 1024 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n",
        ),
        request("/api/customers/1", {**GRACE, "Content-Type": "application/json"}, method="PUT", body=BIG),
        request("/api/customers/bulk-delete", {**GRACE, "Content-Type": "application/json"}, method="POST", body=BIG),
    ],
    ids=["content-length", "declared-terabyte", "chunked", "put", "bulk-delete"],
)
async def test_oversized_bodies_are_refused_before_forwarding(make_gw, standin, raw):
    gw = await make_gw(limits={"max_request_body_bytes": LIMIT})
    answer = await exchange(gw.port, raw, timeout=5)
    assert answer.status == 413 and standin.seen == []


async def test_denied_request_body_is_never_read_nor_forwarded(gw, standin):
    raw = request("/api/customers", {"Content-Type": "application/json", "Content-Length": str(10**9)}, method="POST")
    answer = await exchange(gw.port, raw, timeout=5)
    assert answer.status == 401 and standin.seen == []


async def test_many_idle_connections_do_not_starve_a_real_request(gw, standin):
    idle = [await asyncio.open_connection("127.0.0.1", gw.port) for _ in range(200)]
    try:
        for _, writer in idle[::2]:
            writer.write(b"GET /api/customers HTTP/1.1\r\nHost: g\r\n")  # headers never finished
        answer = await exchange(gw.port, request("/api/customers/1", GRACE))
        assert answer.status == 200
    finally:
        for _, writer in idle:
            writer.close()


async def test_deeply_nested_request_json_is_refused_for_scoped_writes(gw, standin):
    from tests.adversarial.conftest import bearer

    body = b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    raw = request("/api/customers", {**bearer("alice"), "Content-Type": "application/json"}, method="POST", body=body)
    answer = await exchange(gw.port, raw)
    assert answer.status == 400 and standin.seen == []


from tests.adversarial.conftest import SLOW_HEADER_TIMEOUT  # noqa: E402  (limits.header_timeout in the fixture)


@pytest.mark.slow
async def test_slow_headers_are_cut_off(gw):
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(b"GET /api/customers HTTP/1.1\r\nHost: g\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), SLOW_HEADER_TIMEOUT * 2)
        assert data == b"" or data.startswith(b"HTTP/1.1 408")  # closed by the server
    except TimeoutError:
        pytest.fail("the server still holds a connection whose headers never arrived")
    finally:
        writer.close()
