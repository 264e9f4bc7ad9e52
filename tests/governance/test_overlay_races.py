"""The suspension overlay when replicas race and when Redis is down (review of issue 16): on the
real test Redis, and on a real client to a port where nothing listens (Redis down)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from datetime import UTC, datetime

import pytest
from redis.exceptions import RedisError

from gateway.errors import Unavailable
from gateway.governance.actions import Governor, read_journal
from gateway.governance.guard import GovernanceGuard
from gateway.governance.overlay import STATE_KEY, Suspension, SuspensionStore
from gateway.redisconn import connect_redis
from tests.governance.conftest import who


def dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on: Redis is down
        s.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{s.getsockname()[1]}/0"


async def test_a_reload_never_prunes_a_suspension_set_again_after_it_read_the_expired_one(
    guards,
    redis_url,
    tmp_path,
    monkeypatch,
):
    one, two = await guards(), await guards()
    admin = connect_redis(redis_url)
    now = time.time()
    await admin.hset(STATE_KEY, "alice", Suspension("alice", "heidi", "old", now - 10, now - 1).to_json())
    assert one.store.client is not None
    read = one.store.client.hgetall

    async def read_then_another_replica_suspends(key: str) -> dict[bytes, bytes]:
        raw = await read(key)  # replica one holds the expired copy ...
        await Governor(two, tmp_path / "g.jsonl").act("suspend", "alice", actor="heidi", note="again")
        return raw  # ... and prunes what it read, after replica two suspended alice again

    monkeypatch.setattr(one.store.client, "hgetall", read_then_another_replica_suspends)
    await one._reload()
    monkeypatch.undo()
    assert await admin.hexists(STATE_KEY, "alice"), "the fresh suspension was pruned with the expired one"
    await one._reload()
    await two._reload()
    assert one.check(who("alice")) is not None and two.check(who("alice")) is not None
    await admin.hset(STATE_KEY, "bob", Suspension("bob", "heidi", "old", now - 10, now - 1).to_json())
    await one._reload()
    assert not await admin.hexists(STATE_KEY, "bob")  # an expired one nobody touched is still pruned
    await admin.aclose()


async def test_an_unsuspend_that_cannot_reach_redis_lifts_nothing_here_either(guards, tmp_path):
    guard = await guards()
    governor = Governor(guard, tmp_path / "g.jsonl")
    await governor.act("suspend", "alice", actor="heidi", note="phished")
    shared = guard.store
    down = connect_redis(dead_url())
    guard.store = SuspensionStore(down, guard.state)  # this replica's Redis is down now
    with pytest.raises(RedisError):
        await governor.act("unsuspend", "alice", actor="heidi", note="reset done")
    assert guard.check(who("alice")) is not None, "lifted locally while the analyst was told it failed"
    assert [r["action"] for r in read_journal(tmp_path / "g.jsonl")] == ["suspend"]
    guard.store = shared  # Redis back: the lift goes through, here and in Redis
    await governor.act("unsuspend", "alice", actor="heidi", note="reset done")
    assert guard.check(who("alice")) is None and await shared.active(guard.now()) == []
    await down.aclose()


async def test_a_replica_started_while_redis_is_down_refuses_everyone_until_it_loaded_the_overlay(redis_url):
    down = GovernanceGuard(connect_redis(dead_url()), lambda: datetime.now(UTC), reconnect_max=0.2)
    await down.start()
    refusal = down.check(who("bob"))  # bob may be suspended: nobody can tell
    assert isinstance(refusal, Unavailable) and (refusal.status, refusal.reason) == (503, "governance-unavailable")
    health = down.health()
    assert health["degraded"] == ["governance-unavailable"] and health["loaded"] is False and health["problem"]
    await down.stop()
    assert down.client is not None
    await down.client.aclose()
    up = GovernanceGuard(connect_redis(redis_url), lambda: datetime.now(UTC))
    assert up.check(who("bob")) is not None  # not started yet: not loaded either
    await up.start()
    assert up.check(who("bob")) is None and up.health()["degraded"] == [] and up.health()["loaded"] is True
    await up.stop()
    assert up.client is not None
    await up.client.aclose()
    local = GovernanceGuard(None, lambda: datetime.now(UTC))  # no Redis configured: nothing to load
    assert local.check(who("bob")) is None and local.health()["degraded"] == []


async def test_the_watch_loads_the_overlay_once_redis_answers_and_then_lets_users_through(redis_url):
    guard = GovernanceGuard(connect_redis(dead_url()), lambda: datetime.now(UTC), reconnect_max=0.2)
    await guard.start()
    assert guard.check(who("bob")) is not None
    assert guard.client is not None
    await guard.stop()
    await guard.client.aclose()
    guard.client = connect_redis(redis_url)  # what a reconnect to a Redis back up amounts to
    guard.store = SuspensionStore(guard.client, guard.state)
    guard._stopping = False
    guard._task = asyncio.create_task(guard._watch())
    deadline = time.monotonic() + 5
    while guard.check(who("bob")) is not None:
        assert time.monotonic() < deadline, "never loaded"
        await asyncio.sleep(0.05)
    await guard.stop()
    await guard.client.aclose()


@pytest.mark.parametrize(
    "first,second,until_of,kept",
    [
        (None, 60, None, "earlier"),  # until lifted, then 60 s: until lifted stays
        (60, None, None, "this"),  # 60 s, then until lifted: until lifted wins
        (3600, 60, 3600, "earlier"),  # the longer period stays
        (60, 3600, 3600, "this"),
    ],
)
async def test_a_second_suspend_keeps_the_later_end_and_says_so(
    guards,
    tmp_path,
    first,
    second,
    until_of,
    kept,
):
    one, two = await guards(), await guards()
    await Governor(one, tmp_path / "g.jsonl").act("suspend", "alice", actor="heidi", note="first", seconds=first)
    await two._reload()  # the second analyst works on another replica
    record = await Governor(two, tmp_path / "g.jsonl").act(
        "suspend", "alice", actor="grace", note="second", seconds=second
    )
    assert record["kept"] == kept and record["earlier"]["actor"] == "heidi"
    expected_until = None if until_of is None else until_of
    stored = (await two.store.active(two.now()))[0]
    if expected_until is None:
        assert record["until"] is None and stored.until == 0.0
    else:
        assert record["until"] is not None and stored.until - stored.since == pytest.approx(expected_until, abs=2)
    for guard in (one, two):
        await guard._reload()
        s = guard.state.get("alice", guard.now())
        assert s is not None and s.until == stored.until


async def test_a_second_suspend_without_redis_keeps_the_later_end_too(tmp_path):
    guard = GovernanceGuard(None, lambda: datetime.now(UTC))
    governor = Governor(guard, tmp_path / "g.jsonl")
    await governor.act("suspend", "ivan", actor="heidi", note="until lifted")
    record = await governor.act("suspend", "ivan", actor="grace", note="a second", seconds=1)
    assert (record["kept"], record["until"]) == ("earlier", None)
    await asyncio.sleep(1.1)
    assert guard.check(who("ivan")) is not None  # the 1-s one did not replace the indefinite one


def test_several_workers_without_redis_warn_that_suspensions_reach_one_worker(tmp_path, monkeypatch, caplog):
    from gateway import server, supervisor
    from tests.conftest import RULES
    from tests.integration.conftest import gateway_settings

    settings = gateway_settings("http://127.0.0.1:9", tmp_path, RULES)
    for name in (settings.mask_key_env, settings.console.session_secret_env):  # serve sets them: restored
        monkeypatch.setenv(name, "x" * 48)
    started = []
    monkeypatch.setattr(supervisor.Supervisor, "run", lambda self: started.append(self.opts.workers) or 0)
    with caplog.at_level(logging.WARNING, logger="crmgw"):
        assert server.serve(settings, workers=3) == 0
    assert started == [3]
    assert any("no redis_url with 3 workers" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="crmgw"):
        settings = gateway_settings("http://127.0.0.1:9", tmp_path, RULES, redis_url="redis://127.0.0.1:9/0")
        assert server.serve(settings, workers=3) == 0
    assert not any("no redis_url" in r.getMessage() for r in caplog.records)
