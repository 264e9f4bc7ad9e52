"""``crmgw alerts ...`` works on the store directly: its changes show in the API and the other way round."""

from __future__ import annotations

import argparse
import asyncio
import json

from gateway.alerts.cli import register
from tests.alerts.conftest import as_user, raise_kwargs


def crmgw_alerts(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="crmgw")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["alerts", *argv])
    return args.func(args)


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(crmgw_alerts, *argv)  # the CLI runs its own event loop


async def test_cli_false_positive_shows_in_the_api(api, redis_url, tmp_path):
    alert_id = await api.store.raise_alert(**raise_kwargs())
    other_journal = str(tmp_path / "cli-host.jsonl")  # the CLI on another machine: only Redis is shared
    assert (
        await cli(
            "false-positive",
            alert_id,
            "--journal",
            other_journal,
            "--redis-url",
            redis_url,
            "--actor",
            "heidi",
            "--note",
            "quarterly report",
        )
        == 0
    )
    alert = await (await api.get(f"/_gw/api/alerts/{alert_id}", headers=as_user("heidi"))).json()
    assert alert["status"] == "false_positive" and alert["notes"][0]["actor"] == "heidi"


async def test_api_actions_show_in_the_cli(api, redis_url, tmp_path, capsys):
    alert_id = await api.store.raise_alert(**raise_kwargs())
    await api.post(f"/_gw/api/alerts/{alert_id}/ack", json={}, headers=as_user("heidi"))
    assert (
        await cli(
            "list",
            "--journal",
            str(tmp_path / "x.jsonl"),
            "--redis-url",
            redis_url,
            "--status",
            "acknowledged",
            "--json",
        )
        == 0
    )
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["id"] == alert_id and listed["assignee"] == "heidi"


async def test_cli_refuses_an_invalid_transition_and_an_unknown_alert(make_store, tmp_path, capsys):
    store = await make_store(None)
    alert_id = await store.raise_alert(**raise_kwargs())
    journal = str(store.journal.path)
    assert await cli("resolve", alert_id, "--journal", journal, "--actor", "heidi") == 0
    assert await cli("ack", alert_id, "--journal", journal, "--actor", "heidi") == 1
    assert "refused" in capsys.readouterr().err
    assert await cli("show", "01NOPE", "--journal", journal) == 1


async def test_cli_reads_the_gateway_settings_file(make_store, tmp_path, capsys):
    (tmp_path / "rules").mkdir()
    (tmp_path / "gateway.yaml").write_text(
        "upstream: {url: 'http://127.0.0.1:9'}\nrules_dir: rules\nidentity: {api_key: {header: X-API-Key}}\n"
    )
    store = await make_store(None, journal=tmp_path / "var" / "alerts.jsonl")  # the default journal path
    alert_id = await store.raise_alert(**raise_kwargs(summary="seen via gateway.yaml"))
    assert await cli("show", alert_id, "--config", str(tmp_path / "gateway.yaml")) == 0
    assert "seen via gateway.yaml" in capsys.readouterr().out


async def test_cli_exports_verdicts_for_training(make_store, tmp_path):
    store = await make_store(None)
    a = await store.raise_alert(**raise_kwargs())
    b = await store.raise_alert(**raise_kwargs(user="bob"))
    await store.raise_alert(**raise_kwargs(user="carol"))  # still open: no verdict
    await store.transition(a, actor="heidi", status="false_positive")
    await store.transition(b, actor="heidi", status="resolved")
    out = tmp_path / "verdicts.jsonl"
    assert await cli("verdicts", "--journal", str(store.journal.path), "--out", str(out)) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["user"], r["verdict"]) for r in rows} == {("alice", "false_positive"), ("bob", "confirmed")}


async def test_cli_bulk_verdict_reports_each_refusal_and_exits_1(make_store, tmp_path, capsys):
    store = await make_store(None)
    a = await store.raise_alert(**raise_kwargs())
    b = await store.raise_alert(**raise_kwargs(user="bob"))
    journal = str(store.journal.path)
    code = await cli("verdict", a, b, "01NOPE", "--journal", journal, "--actor", "heidi", "--verdict", "false_positive")
    assert code == 1
    out, err = capsys.readouterr()
    assert a in out and b in out and "refused 01NOPE: no such alert" in err
    assert {(await store.get(i)).status for i in (a, b)} == {"false_positive"}


async def test_cli_resolve_with_a_verdict_and_a_determination_without_one(make_store, capsys):
    store = await make_store(None)
    a = await store.raise_alert(**raise_kwargs())
    journal = str(store.journal.path)
    assert await cli("resolve", a, "--journal", journal, "--actor", "heidi", "--determination", "test") == 2
    assert "--determination needs --verdict" in capsys.readouterr().err
    assert (await store.get(a)).status == "open"
    args = ("--verdict", "benign_true_positive", "--determination", "authorized_activity")
    assert await cli("resolve", a, "--journal", journal, "--actor", "heidi", *args) == 0
    alert = await store.get(a)
    assert (alert.status, alert.verdict, alert.determination) == (
        "resolved",
        "benign_true_positive",
        "authorized_activity",
    )
    assert await cli("show", a, "--journal", journal) == 0
    assert "verdict benign_true_positive / authorized_activity" in capsys.readouterr().out
    assert await cli("false-positive", a, "--journal", journal, "--actor", "h", "--verdict", "true_positive") == 1
    assert "refused" in capsys.readouterr().err
