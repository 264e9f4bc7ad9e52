"""CSV exports streamed through a real gateway: filtered, masked and counted row by row, and cut at a
block threshold mid-stream (gateway.response.stream, gateway.signals.allowance)."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import shutil
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bench.export_data import HEADER, row  # the benchmark's rows: a quarter alice's, quoted commas and line breaks
from detectors.events import is_stream_start
from gateway.app import GATEWAY
from tests.conftest import RULES
from tests.integration.conftest import audit_lines, auth

EXPORT = "/api/customers/export.csv"

# A sales rep may export their own customers, masked: what the shipped rules do not grant (exports are
# for admins and the reporting service), so the tests add it.
SCOPED_EXPORT_POLICY = """format: crmgw.rules/v1
rules:
  - id: test-sales-export-own-masked
    title: Sales reps export their own customers with complaints removed and phones redacted
    match: {operations: [customers.export]}
    allow:
      role: {in: [sales_rep]}
    data_scope: {sales_rep: own}
    mask:
      - {field: complaints, op: remove}
      - {field: phone, op: redact, keep_last: 4}
      - {field: email, op: hash}
"""
BLOCK_RULE = """
  - id: test-export-block
    title: Exporting more than 400 rows an hour blocks the user
    count: records_exported
    group_by: [user]
    match: {operations: ["*.export"]}
    timespan: 1h
    condition: {gt: 400}
    level: critical
    action: block
    action_ttl: 1h
    summary: "{user} exported {value} rows in {timespan}"
"""


def scoped_rules(tmp_path: Path, *, block: bool = False) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "policies" / "50-test-scoped-export.yaml").write_text(SCOPED_EXPORT_POLICY)
    if block:
        anomalies = rules / "anomalies.yaml"
        anomalies.write_text(anomalies.read_text() + BLOCK_RULE)
    return rules


def export_body(rows: int) -> bytes:
    return (HEADER + "".join(row(i) for i in range(1, rows + 1))).encode()


def upstream_app(
    body: bytes,
    *,
    piece: int = 997,
    encoding: str | None = None,
    content_type: str = "text/csv; charset=utf-8",
    path: str = EXPORT,
) -> web.Application:
    """A CRM stand-in that streams ``body`` in odd-sized chunks (rows and quoted cells split anywhere)."""

    async def export(request: web.Request) -> web.StreamResponse:
        data = gzip.compress(body) if encoding == "gzip" else body
        headers = {"Content-Type": content_type, **({"Content-Encoding": encoding} if encoding else {})}
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        try:
            for i in range(0, len(data), piece):
                await resp.write(data[i : i + piece])
            await resp.write_eof()
        except ConnectionError:
            pass  # the gateway stopped reading (a cut export, a client gone)
        return resp

    app = web.Application()
    app.router.add_get(path, export)
    return app


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_scoped_masked_export_streams_only_the_callers_rows_masked(
    aiohttp_server, make_gateway, tmp_path, encoding
):
    crm = await aiohttp_server(upstream_app(export_body(2000), encoding=encoding))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path))
    resp = await gw.get(EXPORT, headers=auth("alice"))
    assert resp.status == 200, await resp.text()
    assert "Content-Encoding" not in resp.headers and resp.headers["Content-Type"].startswith("text/csv")
    rows = parse(await resp.text())
    assert len(rows) == 500 and {r["owner_id"] for r in rows} == {"alice"}
    assert "complaints" not in rows[0]
    assert all(r["phone"].startswith("*") and r["phone"][-4:] == "7 89" for r in rows)
    assert all(r["email"].startswith("hmac:") for r in rows)
    assert rows[9]["name"] == "Customer 40, Ltd" and rows[24]["notes"] == "called twice\r\nwants a quote"
    line = audit_lines(tmp_path)[-1]
    assert (line["status"], line["records_seen"], line["records_returned"]) == (200, 2000, 500)
    assert line["record_ids"][:3] == ["4", "8", "12"] and line["fields_masked"] == ["complaints", "email", "phone"]


async def test_head_on_an_export_answers_the_header_and_sends_no_rows(aiohttp_server, make_gateway, tmp_path):
    crm = await aiohttp_server(upstream_app(export_body(2000)))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path))
    resp = await gw.head(EXPORT, headers=auth("alice"))
    assert resp.status == 200 and await resp.read() == b""
    assert audit_lines(tmp_path)[-1]["records_returned"] == 0


async def test_malformed_row_mid_stream_cuts_the_connection_and_says_so(aiohttp_server, make_gateway, tmp_path):
    body = export_body(3000) + b"3001,too,few,cells\r\n" + export_body(10).split(b"\r\n", 1)[1]
    crm = await aiohttp_server(upstream_app(body, piece=4096))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path))
    resp = await gw.get(EXPORT, headers=auth("alice"))
    assert resp.status == 200  # the first rows went out before the bad one arrived
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async for chunk in resp.content.iter_any():
            received += chunk
    line = audit_lines(tmp_path)[-1]
    assert line["signals"]["stream"]["cut"] == "unenforceable" and "cells" in line["signals"]["stream"]["detail"]
    # the block holding the bad row is withheld whole; the rows sent before it are counted as exported
    assert 0 < line["records_returned"] == len(parse(received.decode())) < 750


async def test_malformed_header_is_an_ordinary_502(aiohttp_server, make_gateway, tmp_path):
    crm = await aiohttp_server(upstream_app(b"id,id,owner_id\r\n1,1,alice\r\n"))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path))
    resp = await gw.get(EXPORT, headers=auth("alice"))
    assert resp.status == 502 and (await resp.json())["reason"] == "obligation-unenforceable"


async def test_export_crossing_a_block_threshold_is_cut_and_the_user_blocked(
    aiohttp_server, make_gateway, tmp_path, redis_url
):
    crm = await aiohttp_server(upstream_app(export_body(1200)))  # 300 of alice's rows per export
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path, block=True), redis_url=redis_url)
    signals = gw.server.app[GATEWAY].signals
    first = await gw.get(EXPORT, headers=auth("alice"))
    assert first.status == 200 and len(parse(await first.text())) == 300
    await signals.drain()  # counted: 300 of the 400 allowed in the hour

    second = await gw.get(EXPORT, headers=auth("alice"))
    assert second.status == 200  # the status line went out with the first rows
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):  # the body stops short: never a complete export
        async for chunk in second.content.iter_any():
            received += chunk
    assert len(parse(received.decode())) == 101  # 400 - 300 allowed, and the row that crosses (401)
    line = audit_lines(tmp_path)[-1]
    assert line["signals"]["stream"] == {"cut": "row-budget", "rule": "test-export-block", "budget": 101}
    assert (line["status"], line["effect"], line["records_returned"]) == (200, "allow", 101)

    await signals.drain()  # the 401st row fired the rule: alice is blocked from her next request
    third = await gw.get(EXPORT, headers=auth("alice"))
    assert third.status == 403 and (await third.json())["reason"] == "anomaly-block"


@pytest.mark.slow  # a few seconds: an export larger than the socket buffers
async def test_a_client_hanging_up_mid_export_is_audited_with_the_rows_sent(aiohttp_server, make_gateway, tmp_path):
    crm = await aiohttp_server(upstream_app(export_body(200_000), piece=65536))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path))
    resp = await gw.get(EXPORT, headers=auth("alice"))
    assert resp.status == 200
    await resp.content.readany()
    resp.close()  # hang up
    for _ in range(200):  # the request's own line (the stream's start line was written before any row)
        lines = audit_lines(tmp_path) if (tmp_path / "audit.log").exists() else []
        lines = [line for line in lines if not is_stream_start(line)]
        if lines:
            break
        await asyncio.sleep(0.05)
    line = lines[-1]
    # aiohttp cancels the handler (the pipeline's reason) or, under `crmgw serve`, the next write
    # fails (the stream's own cut): either way the line says so, with the rows that went out
    assert "client-disconnected" in (line["reason"], line.get("signals", {}).get("stream", {}).get("cut"))
    assert 0 < lines[-1]["records_returned"] < 50_000
