"""A streamed export's audit line is written before its end goes out (the last chunk, or the close of
a cut stream), its start line before anything goes out, and an HTTP/1.0 client, whose body cannot say
"cut", is answered buffered."""

from __future__ import annotations

import asyncio
import csv
import io
import socket
from typing import Any

import pytest

from detectors.events import is_stream_start
from gateway.app import GATEWAY
from tests.integration.conftest import audit_lines, auth
from tests.integration.test_stream_exports import EXPORT, export_body, scoped_rules, upstream_app

LAST_CHUNK = b"\r\n0\r\n\r\n"
# what the client held when each audit line was written: nothing at the start line; rows but not
# the end at the request's own line
STARTED = {
    "line": "start",
    "client_has_bytes": False,
    "client_has_last_chunk": False,
    "client_saw_close": False,
    "gateway_closing": False,
}
ENDING = {
    "line": "final",
    "client_has_bytes": True,
    "client_has_last_chunk": False,
    "client_saw_close": False,
    "gateway_closing": False,
}


class RawClient:
    """One HTTP request over a plain non-blocking socket: what the client holds at any moment can be
    read from inside the gateway's own code (the audit write below), without yielding to the loop."""

    def __init__(self, host: str, port: int, request: bytes):
        self.sock = socket.create_connection((host, port))
        self.sock.sendall(request)
        self.sock.setblocking(False)
        self.received = b""
        self.closed = False

    def drain(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except ConnectionError:
                data = b""
            if not data:
                self.closed = True
            self.received += data

    async def until_closed_or(self, marker: bytes, timeout: float = 20) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.closed and not self.received.endswith(marker):
            assert loop.time() < deadline, self.received[-300:]
            self.drain()
            await asyncio.sleep(0.002)

    def head_and_body(self) -> tuple[bytes, bytes]:
        head, _, body = self.received.partition(b"\r\n\r\n")
        return head, body


@pytest.fixture
def raw():
    """``raw(gw, "GET", path, "HTTP/1.1", headers)`` -> a RawClient, its socket closed after the test."""
    clients: list[RawClient] = []

    def connect(gw: Any, method: str, path: str, version: str, headers: dict[str, str]) -> RawClient:
        clients.append(RawClient(gw.server.host, gw.server.port, request(method, path, version, headers)))
        return clients[-1]

    yield connect
    for client in clients:
        client.sock.close()


def request(method: str, path: str, version: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} {version}", "Host: gateway.test", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def spy_on_audit(gw: Any, client: RawClient) -> list[dict[str, Any]]:
    """Record, each time the gateway writes an audit line, what the client holds and whether the
    gateway is closing its end of the connection; the writes themselves go on unchanged."""
    services = gw.server.app[GATEWAY]
    seen: list[dict[str, Any]] = []

    def observe(record: dict[str, Any]) -> None:
        client.drain()
        connections = gw.server.runner.server.connections
        seen.append(
            {
                "line": "start" if is_stream_start(record) else "final",
                "client_has_bytes": bool(client.received),
                "client_has_last_chunk": client.received.endswith(LAST_CHUNK),
                "client_saw_close": client.closed,
                "gateway_closing": any(h.transport is None or h.transport.is_closing() for h in connections),
            }
        )

    write, write_soon = services.audit.write, services.audit.write_soon

    def write_observed(record: dict[str, Any]) -> bool:
        observe(record)
        return write(record)

    def write_soon_observed(record: dict[str, Any]) -> Any:
        observe(record)
        return write_soon(record)

    services.audit.write, services.audit.write_soon = write_observed, write_soon_observed
    return seen


def dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


async def test_the_audit_line_is_written_before_the_last_chunk(aiohttp_server, make_gateway, tmp_path, raw):
    crm = await aiohttp_server(upstream_app(export_body(400)))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path))
    client = raw(gw, "GET", EXPORT, "HTTP/1.1", auth("alice"))
    seen = spy_on_audit(gw, client)
    await client.until_closed_or(LAST_CHUNK)
    assert client.received.endswith(LAST_CHUNK)  # a complete export
    # the moment its line was written, the client held rows but not the last chunk
    assert seen == [STARTED, ENDING]
    line = audit_lines(tmp_path)[-1]
    assert (line["status"], line["records_returned"]) == (200, 100) and "stream" not in line.get("signals", {})
    head, body = client.head_and_body()
    assert b"transfer-encoding: chunked" in head.lower()
    assert len(list(csv.DictReader(io.StringIO(dechunk(body).decode(), newline="")))) == 100


async def test_a_cut_streams_line_is_written_before_the_connection_closes(aiohttp_server, make_gateway, tmp_path, raw):
    body = export_body(3000) + b"3001,too,few,cells\r\n"
    crm = await aiohttp_server(upstream_app(body, piece=4096))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path))
    client = raw(gw, "GET", EXPORT, "HTTP/1.1", auth("alice"))
    seen = spy_on_audit(gw, client)
    await client.until_closed_or(LAST_CHUNK)
    assert client.closed and not client.received.endswith(LAST_CHUNK)  # cut: no last chunk
    assert seen == [STARTED, ENDING]
    assert audit_lines(tmp_path)[-1]["signals"]["stream"]["cut"] == "unenforceable"


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_an_http10_client_gets_the_export_buffered_with_its_length(
    aiohttp_server, make_gateway, tmp_path, raw, encoding
):
    crm = await aiohttp_server(upstream_app(export_body(2000), encoding=encoding))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path))
    client = raw(gw, "GET", EXPORT, "HTTP/1.0", auth("alice"))
    await client.until_closed_or(b"\0never")
    head, body = client.head_and_body()
    assert head.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")), head
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(b":", 1) for h in head.split(b"\r\n")[1:])}
    assert b"transfer-encoding" not in headers and int(headers[b"content-length"]) == len(body)
    rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
    assert len(rows) == 500 and {r["owner_id"] for r in rows} == {"alice"} and "complaints" not in rows[0]
    line = audit_lines(tmp_path)[-1]
    assert (line["status"], line["records_seen"], line["records_returned"]) == (200, 2000, 500)


async def test_an_http10_export_over_the_body_cap_is_refused_not_cut(aiohttp_server, make_gateway, tmp_path, raw):
    crm = await aiohttp_server(upstream_app(export_body(2000)))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path), limits={"max_response_body_bytes": 100_000})
    client = raw(gw, "GET", EXPORT, "HTTP/1.0", auth("alice"))
    await client.until_closed_or(b"\0never")
    head, body = client.head_and_body()
    assert b" 502 " in head.split(b"\r\n")[0] and b"obligation-unenforceable" in body
    # the same export to an HTTP/1.1 client streams: the cap no longer applies to it
    ok = await gw.get(EXPORT, headers=auth("alice"))
    assert ok.status == 200 and len(list(csv.DictReader(io.StringIO(await ok.text(), newline="")))) == 500
