"""A streamed export writes a "stream started" audit line before its first row goes out, so a gateway
killed mid-export still leaves a line; every reader that counts, replays or lists requests skips it,
and the hash chain holds both lines (gateway.response.stream, gateway.audit.events)."""

from __future__ import annotations

import asyncio
import csv
import io
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiohttp import web

from detectors.auditlogs import read_audit_logs
from detectors.events import count_event, is_stream_start
from gateway.app import GATEWAY
from gateway.audit.index import AuditIndex
from gateway.audit.search import AuditQuery, find_decision, search
from gateway.cli import main
from gateway.identity.devkeys import DEV_IDENTITY_CONFIG, mint_token
from gateway.redisconn import connect_redis
from gateway.replay import Replayer, read_lines
from gateway.signals import SignalsConfig
from gateway.signals.rebuild import rebuild
from tests.conftest import REPO, open_rules
from tests.integration.conftest import auth
from tests.integration.test_demo_command import free_port
from tests.integration.test_stream_exports import EXPORT, export_body, scoped_rules

BODY = export_body(2000)
FIRST = BODY.index(b"\r\n", 20_000) + 2  # the header and some rows: what the CRM sends before it stalls


def stalling_crm(release: asyncio.Event | None) -> web.Application:
    """A CRM that sends the first rows of the export, then waits for ``release`` (None: for ever)."""

    async def export(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8"})
        await resp.prepare(request)
        try:
            await resp.write(BODY[:FIRST])
            await (release.wait() if release is not None else asyncio.sleep(3600))
            await resp.write(BODY[FIRST:])
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    app = web.Application()
    app.router.add_get(EXPORT, export)
    return app


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


def verify(path: Path, capsys: Any) -> str:
    code = main(["audit", "verify", str(path)])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


@pytest.fixture
async def exported(aiohttp_server, make_gateway, tmp_path) -> dict[str, Any]:
    """One export through an in-process gateway; what the audit file held when the first bytes
    reached the client, and the file once it was done."""
    release = asyncio.Event()
    crm = await aiohttp_server(stalling_crm(release))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path))
    log = tmp_path / "audit.log"
    resp = await gw.get(EXPORT, headers=auth("alice"))
    assert resp.status == 200
    first = await resp.content.readany()  # the status line and the first rows are here
    at_first_bytes = lines_of(log)
    release.set()
    rest = await resp.read()
    return {
        "request_id": resp.headers["X-Request-Id"],
        "first": first,
        "rows": len(list(csv.reader(io.StringIO((first + rest).decode(), newline="")))) - 1,
        "at_first_bytes": at_first_bytes,
        "log": log,
        "tmp_path": tmp_path,
    }


async def test_the_start_line_is_in_the_file_before_the_client_gets_the_first_row(exported, capsys):
    assert exported["first"].startswith(b"id,name,")
    (start,) = exported["at_first_bytes"]  # written and flushed before anything went out
    assert is_stream_start(start) and start["phase"] == "stream-started"
    assert (start["request_id"], start["user"], start["roles"], start["operation"]) == (
        exported["request_id"],
        "alice",
        ["sales_rep"],
        "customers.export",
    )
    assert (start["effect"], start["scope"], start["rules"]) == ("allow", "own", ["test-sales-export-own-masked"])
    assert "decision_id" not in start and "records_returned" not in start  # nothing to count, no decision to find

    first, final = lines_of(exported["log"])  # then the request's own line, as before
    assert first == start and not is_stream_start(final)
    assert (final["request_id"], final["status"], final["records_returned"]) == (
        exported["request_id"],
        200,
        exported["rows"],
    )
    assert verify(exported["log"], capsys).startswith("ok: 2 lines")


def _count_event(log: Path, _: Any) -> int:
    return sum(count_event(r) is not None for r in lines_of(log))


def _detector_replay(log: Path, _: Any) -> int:
    return len(list(read_audit_logs([log])))


def _rules_replay(log: Path, rules: Path) -> int:
    ruleset = open_rules(rules).current
    replayer = Replayer(ruleset, ruleset)
    for record in read_lines([log]):
        replayer.feed(record)
    assert replayer.bad_lines == 0
    return replayer.lines


def _index(log: Path, _: Any) -> int:
    index = AuditIndex(log)
    assert index.catch_up().bad_lines == 0
    return len(index.query(AuditQuery()).records)


def _search(log: Path, _: Any) -> int:  # what the console's audit pages and dashboard read
    found = search(log, AuditQuery())
    assert found.bad_lines == 0
    return len(found.records)


READERS: dict[str, Callable[[Path, Any], int]] = {
    "signals count_event": _count_event,
    "detector replay (read_audit_logs)": _detector_replay,
    "rules replay (read_lines)": _rules_replay,
    "audit index": _index,
    "audit search / console": _search,
}


@pytest.mark.parametrize("reader", READERS)
async def test_each_reader_sees_one_request_not_two(exported, reader):
    assert len(lines_of(exported["log"])) == 2
    assert READERS[reader](exported["log"], exported["tmp_path"] / "rules") == 1


async def test_the_console_finds_the_requests_own_line_by_its_id(exported):
    found = find_decision(exported["log"], exported["request_id"])
    assert found is not None and found["records_returned"] == exported["rows"]


async def test_signals_rebuild_counts_the_export_once(exported, redis_url, clock):
    client = connect_redis(redis_url)
    try:
        now = clock() + timedelta(hours=1)
        records = read_audit_logs([exported["log"]])  # what `crmgw signals rebuild` reads
        rules = open_rules(exported["tmp_path"] / "rules").current.anomalies
        report = await rebuild(client, SignalsConfig(), rules, records, now=now, since=now - timedelta(days=1))
        assert (report.read, report.replayed, report.uncountable) == (1, 1, 0)
        # given the raw lines, the start line is still not counted (count_event refuses it)
        raw = lines_of(exported["log"])
        again = await rebuild(client, SignalsConfig(), rules, raw, now=now, since=now - timedelta(days=1))
        assert (again.read, again.replayed + again.skipped, again.uncountable) == (2, 1, 1)
    finally:
        await client.aclose()


@pytest.mark.slow  # starts `crmgw serve`
async def test_a_gateway_killed_mid_export_leaves_the_start_line(aiohttp_server, tmp_path, capsys):
    crm = await aiohttp_server(stalling_crm(None))
    port = free_port()
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "upstream": {"url": str(crm.make_url("")).rstrip("/"), "credential": {"value": "Bearer t"}},
        "rules_dir": str(scoped_rules(tmp_path)),
        "audit": {"path": str(tmp_path / "audit.log")},
        "identity": DEV_IDENTITY_CONFIG.model_dump(mode="json", exclude_defaults=True),
    }
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--config", str(tmp_path / "gateway.yaml"), cwd=REPO
    )
    try:
        async with aiohttp.ClientSession() as client:
            for _ in range(200):
                try:
                    async with client.get(f"http://127.0.0.1:{port}/_gw/health") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            headers = {"Authorization": f"Bearer {mint_token('alice')}"}
            async with client.get(f"http://127.0.0.1:{port}{EXPORT}", headers=headers) as resp:
                assert resp.status == 200
                assert (await resp.content.readany()).startswith(b"id,name,")  # mid-export
                request_id = resp.headers["X-Request-Id"]
                proc.send_signal(signal.SIGKILL)  # OOM killer, a redeploy: no clean-up runs
                await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    (line,) = lines_of(tmp_path / "audit.log")
    assert is_stream_start(line) and (line["request_id"], line["user"], line["operation"], line["effect"]) == (
        request_id,
        "alice",
        "customers.export",
        "allow",
    )
    assert verify(tmp_path / "audit.log", capsys).startswith("ok: 1 lines")


async def test_an_export_whose_start_line_cannot_be_written_sends_no_row(aiohttp_server, make_gateway, tmp_path):
    release = asyncio.Event()
    release.set()
    crm = await aiohttp_server(stalling_crm(release))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path))
    gateway = gw.server.app[GATEWAY]
    gateway.audit.close()  # the disk refuses from now on: a file where the log's folder should be
    gateway.audit.path = tmp_path / "no-such-dir" / "audit.log"
    (tmp_path / "no-such-dir").write_text("a file")
    resp = await gw.get(EXPORT, headers=auth("alice"))
    assert resp.status == 503 and (await resp.json())["reason"] == "audit-unavailable"  # fail closed: no row
    assert gateway.audit.dropped == 2  # the start line and the request's line, both kept on stderr
