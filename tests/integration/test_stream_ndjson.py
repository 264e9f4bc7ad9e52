"""NDJSON exports streamed through a real gateway: a catalogue endpoint with ``format: ndjson``,
filtered, masked and counted line by line, cut mid-stream at a malformed line or a block threshold,
buffered for an HTTP/1.0 client."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from gateway.app import GATEWAY
from tests.integration.conftest import audit_lines, auth
from tests.integration.test_stream_audit_order import LAST_CHUNK, raw  # noqa: F401 (the fixture)
from tests.integration.test_stream_exports import scoped_rules
from tests.integration.test_stream_exports import upstream_app as csv_upstream_app

EXPORT = "/api/customers/export.ndjson"
ENDPOINT = (
    "  - {method: GET, path: /api/customers/export.ndjson, operation: customers.export, format: ndjson,\n"
    '     records: ["$"]}\n'
)
OWNERS = ("alice", "bob", "carol", "dave")


def ndjson_rules(tmp_path: Path, *, block: bool = False) -> Path:
    rules = scoped_rules(tmp_path, block=block)
    operations = rules / "operations.yaml"
    text = operations.read_text()
    anchor = "  - {method: GET, path: /api/customers/export.json,"
    assert anchor in text
    operations.write_text(text.replace(anchor, ENDPOINT + anchor, 1))
    return rules


def record(i: int) -> dict:
    return {
        "id": i,
        "name": f'Customer {i}, "Ltd"\n' if i % 10 == 0 else f"Customer {i}",
        "email": f"c{i}@client.example",
        "phone": f"+33 1 {i % 100:02d} 67 89",
        "owner_id": OWNERS[i % 4],
        "complaints": "late delivery",
        "notes": {"text": "renewal", "tags": ["a", "é"]},
    }


def export_body(rows: int) -> bytes:
    return b"".join(orjson.dumps(record(i)) + b"\n" for i in range(1, rows + 1))


def upstream_app(body: bytes, *, piece: int = 997, encoding: str | None = None) -> web.Application:
    return csv_upstream_app(body, piece=piece, encoding=encoding, content_type="application/x-ndjson", path=EXPORT)


def lines(body: bytes) -> list[dict]:
    return [orjson.loads(line) for line in body.splitlines()]


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_scoped_masked_ndjson_export_streams_only_the_callers_records(
    aiohttp_server, make_gateway, tmp_path, encoding
):
    crm = await aiohttp_server(upstream_app(export_body(2000), encoding=encoding))
    gw = await make_gateway(crm, rules=ndjson_rules(tmp_path))
    resp = await gw.get(EXPORT, headers=auth("alice"))
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/x-ndjson") and "Content-Encoding" not in resp.headers
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    got = lines(await resp.read())
    assert len(got) == 500 and {r["owner_id"] for r in got} == {"alice"}
    assert all("complaints" not in r and r["phone"][-4:] == "7 89" and r["phone"].startswith("*") for r in got)
    assert all(r["email"].startswith("hmac:") for r in got)
    assert got[9]["name"] == 'Customer 40, "Ltd"\n' and got[0]["notes"] == {"text": "renewal", "tags": ["a", "é"]}
    line = audit_lines(tmp_path)[-1]
    assert (line["status"], line["records_seen"], line["records_returned"]) == (200, 2000, 500)
    assert line["record_ids"][:3] == ["4", "8", "12"] and line["fields_masked"] == ["complaints", "email", "phone"]


async def test_malformed_line_mid_stream_cuts_the_connection_and_says_so(aiohttp_server, make_gateway, tmp_path):
    body = export_body(3000) + b'{"id": 3001, "owner_id": "alice"\n' + export_body(10)
    crm = await aiohttp_server(upstream_app(body, piece=4096))
    gw = await make_gateway(crm, rules=ndjson_rules(tmp_path))
    resp = await gw.get(EXPORT, headers=auth("alice"))
    assert resp.status == 200
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async for chunk in resp.content.iter_any():
            received += chunk
    line = audit_lines(tmp_path)[-1]
    assert line["signals"]["stream"]["cut"] == "unenforceable" and "JSON" in line["signals"]["stream"]["detail"]
    assert 0 < line["records_returned"] == len(lines(received)) < 750


async def test_ndjson_export_crossing_a_block_threshold_is_cut(aiohttp_server, make_gateway, tmp_path, redis_url):
    crm = await aiohttp_server(upstream_app(export_body(1200)))  # 300 of alice's records per export
    gw = await make_gateway(crm, rules=ndjson_rules(tmp_path, block=True), redis_url=redis_url)
    signals = gw.server.app[GATEWAY].signals
    first = await gw.get(EXPORT, headers=auth("alice"))
    assert first.status == 200 and len(lines(await first.read())) == 300
    await signals.drain()
    second = await gw.get(EXPORT, headers=auth("alice"))
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async for chunk in second.content.iter_any():
            received += chunk
    assert len(lines(received)) == 101
    line = audit_lines(tmp_path)[-1]
    assert line["signals"]["stream"] == {"cut": "row-budget", "rule": "test-export-block", "budget": 101}
    await signals.drain()
    assert (await gw.get(EXPORT, headers=auth("alice"))).status == 403


async def test_an_http10_client_gets_the_ndjson_export_buffered(aiohttp_server, make_gateway, tmp_path, raw):
    crm = await aiohttp_server(upstream_app(export_body(400)))
    gw = await make_gateway(crm, rules=ndjson_rules(tmp_path))
    client = raw(gw, "GET", EXPORT, "HTTP/1.0", auth("alice"))
    await client.until_closed_or(b"\0never")
    head, body = client.head_and_body()
    assert b" 200 " in head.split(b"\r\n")[0] and b"content-length: %d" % len(body) in head.lower()
    assert b"transfer-encoding" not in head.lower() and not body.endswith(LAST_CHUNK)
    got = lines(body)
    assert len(got) == 100 and {r["owner_id"] for r in got} == {"alice"} and "complaints" not in got[0]
    assert audit_lines(tmp_path)[-1]["records_returned"] == 100
