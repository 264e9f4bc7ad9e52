"""``crmgw blocks list|lift``: the real parser (gateway/cli.py), Redis shared with a running stage, the
lift recorded in the causing alert's history in the alerts store (journal + Redis)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from gateway.alerts.journal import Journal
from gateway.alerts.store import AlertStore
from gateway.cli import build_parser
from gateway.redisconn import connect_redis
from gateway.signals.enforcement import Measure
from tests.policy.factories import make_identity
from tests.signals.factories import delete
from tests.signals.test_enforcement import CTX, FLOW, shipped, until  # noqa: F401  (fixture)


def crmgw(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return args.func(args)


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(crmgw, *argv)  # the CLI runs its own event loop


def real_now() -> datetime:
    return datetime.now(UTC)  # the CLI reads the wall clock: so does the gateway in production


@pytest.fixture
async def alert_store(redis_url, tmp_path):
    store = AlertStore(Journal(tmp_path / "gw" / "alerts.jsonl"), redis=connect_redis(redis_url), writer="gw")
    await store.start(background=False)
    yield store
    await store.close()


async def test_list_then_lift_with_a_note_recorded_in_the_alert_and_effective_on_the_gateway(
    make_stage, redis_url, shipped, alert_store, tmp_path, capsys
):
    stage = await make_stage("redis", redis_url, alerts=alert_store, clock=real_now)
    stage.submit(FLOW, delete("grace", n=25, when=real_now()), shipped)
    await stage.drain()
    grace = make_identity("grace")
    assert stage.check(grace, CTX).reason == "anomaly-block"
    cli_journal = str(tmp_path / "cli-host.jsonl")  # the CLI on another machine: only Redis is shared
    assert await cli("blocks", "list", "--journal", cli_journal, "--redis-url", redis_url, "--json") == 0
    (listed,) = json.loads(capsys.readouterr().out)
    (alert,) = await alert_store.list(user="grace")
    assert (listed["user"], listed["action"], listed["rule"], listed["alert"]) == (
        "grace",
        "block",
        "mass-delete",
        alert.id,
    )
    assert listed["since"] < listed["until"]

    assert (
        await cli(
            "blocks",
            "lift",
            "grace",
            "--journal",
            cli_journal,
            "--redis-url",
            redis_url,
            "--actor",
            "heidi",
            "--note",
            "planned purge, confirmed by phone",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"lifted block of grace (rule mass-delete); recorded in alert {alert.id}" in out
    await until(lambda: stage.check(grace, CTX) is None)  # the running stage stops refusing (pub/sub)
    alert = await alert_store.get(alert.id)
    entry = alert.history[-1]
    assert (entry.actor, entry.action, entry.to) == ("heidi", "lift_block", "lifted")
    assert entry.from_.startswith("block by mass-delete until ")
    assert alert.notes[-1].text == "Lifted the block (mass-delete): planned purge, confirmed by phone"
    assert alert.status == "open"  # lifting is not a verdict

    assert await cli("blocks", "list", "--journal", cli_journal, "--redis-url", redis_url, "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
    assert (
        await cli(
            "blocks",
            "lift",
            "grace",
            "--journal",
            cli_journal,
            "--redis-url",
            redis_url,
            "--actor",
            "heidi",
            "--note",
            "again",
        )
        == 1
    )
    assert "no block or step-up in force for grace" in capsys.readouterr().err


async def test_lift_needs_a_note_and_lifts_only_the_action_named(make_stage, redis_url, tmp_path, capsys):
    stage = await make_stage("redis", redis_url, clock=real_now)
    now = real_now().timestamp()
    for action in ("block", "step_up"):
        await stage.enforcement.impose(Measure("bob", action, "manual", now + 600, since=now))
    journal = str(tmp_path / "a.jsonl")
    with pytest.raises(SystemExit):  # argparse: --note is required
        crmgw("blocks", "lift", "bob", "--journal", journal, "--redis-url", redis_url, "--actor", "heidi")
    assert (
        await cli(
            "blocks", "lift", "bob", "--journal", journal, "--redis-url", redis_url, "--actor", "heidi", "--note", " "
        )
        == 2
    )
    assert (
        await cli(
            "blocks",
            "lift",
            "bob",
            "--action",
            "step_up",
            "--journal",
            journal,
            "--redis-url",
            redis_url,
            "--actor",
            "heidi",
            "--note",
            "travelling this week",
        )
        == 0
    )
    assert "not recorded: the measure names no alert" in capsys.readouterr().out
    assert await cli("blocks", "list", "--journal", journal, "--redis-url", redis_url) == 0
    out = capsys.readouterr().out
    assert "bob" in out and "block" in out and "step_up" not in out


async def test_without_redis_the_command_says_blocks_live_in_redis(tmp_path, capsys):
    assert await cli("blocks", "list", "--journal", str(tmp_path / "a.jsonl")) == 2
    assert "shared through Redis" in capsys.readouterr().err
