"""Blocks an analyst controls (gateway/signals/blocks.py): listed from Redis, lifted on every instance.

A mass delete (rules/anomalies.yaml ``mass-delete``: > 20 records deleted in 5 minutes, action
block) is what imposes the block, as in test_enforcement.py and test_gateway_signals.py.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis.asyncio as aioredis

from gateway.signals import blocks
from gateway.signals.enforcement import STATE_KEY, Measure
from tests.integration.conftest import auth
from tests.policy.factories import make_identity
from tests.signals.factories import T0, delete
from tests.signals.test_enforcement import CTX, FLOW, shipped, until  # noqa: F401  (fixture)


async def test_the_list_comes_from_redis_and_names_rule_since_until_and_the_alert(make_stage, redis_url, shipped):
    a, b = await make_stage("redis", redis_url), await make_stage("redis", redis_url)
    a.submit(FLOW, delete(n=25), shipped)
    await a.drain()
    (m,) = await blocks.active(b.enforcement, T0.timestamp())  # the other instance reads the same store
    assert (m.user, m.action, m.rule, m.alert) == ("alice", "block", "mass-delete", "alert-1")
    assert (m.since, m.until) == (T0.timestamp(), T0.timestamp() + 3600)
    assert blocks.measure_dict(m)["until"] == "2026-03-03T10:00:00Z"  # 11:00 Paris
    assert await blocks.active(b.enforcement, T0.timestamp(), user="bob") == []
    assert await blocks.active(b.enforcement, T0.timestamp() + 3600) == []  # expired: not listed


async def test_a_lift_reaches_the_other_instance_at_once_and_is_logged(make_stage, redis_url, shipped, caplog):
    a, b = await make_stage("redis", redis_url), await make_stage("redis", redis_url)
    alice = make_identity("alice")
    a.submit(FLOW, delete(n=25), shipped)
    await a.drain()
    await until(lambda: b.check(alice, CTX) is not None)
    with caplog.at_level(logging.WARNING, logger="crmgw.blocks"):
        (lifted,) = await blocks.lift(
            a.enforcement, None, user="alice", actor="heidi", note="month-end clean-up", now=T0.timestamp()
        )
    assert a.check(alice, CTX) is None  # the lifting instance: before any I/O completes
    await until(lambda: b.check(alice, CTX) is None, timeout=2.0)  # pub/sub, not the reload backstop
    assert lifted.measure.rule == "mass-delete" and lifted.recorded_in is None
    assert "names no alert" not in (lifted.problem or "") and "alerts are not configured" in lifted.problem
    assert "heidi lifted the block of alice (rule mass-delete" in caplog.text and "month-end clean-up" in caplog.text
    client = aioredis.from_url(redis_url)
    try:
        assert await client.hkeys(STATE_KEY) == []
    finally:
        await client.aclose()
    late = await make_stage("redis", redis_url)  # and an instance started afterwards does not reload it
    assert late.check(alice, CTX) is None


async def test_lift_one_action_leaves_the_other(make_stage, redis_url):
    stage = await make_stage("redis", redis_url)
    now = T0.timestamp()
    for action in ("block", "step_up"):
        await stage.enforcement.impose(Measure("bob", action, "manual", now + 600, since=now))
    (lifted,) = await blocks.lift(
        stage.enforcement, None, user="bob", action="step_up", actor="heidi", note="travelling", now=now
    )
    assert lifted.measure.action == "step_up"
    assert [m.action for m in await blocks.active(stage.enforcement, now)] == ["block"]
    assert (
        await blocks.lift(stage.enforcement, None, user="bob", action="step_up", actor="heidi", note="again", now=now)
        == []
    )  # nothing left of that kind


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"note": "  "}, "needs a note"),
        ({"actor": ""}, "needs an actor"),
        ({"action": "ban"}, "action must be"),
    ],
)
async def test_an_incomplete_lift_is_refused_and_lifts_nothing(make_stage, redis_url, kwargs, message):
    stage = await make_stage("redis", redis_url)
    now = T0.timestamp()
    await stage.enforcement.impose(Measure("bob", "block", "manual", now + 600))
    args = {"user": "bob", "actor": "heidi", "note": "why", "now": now, **kwargs}
    with pytest.raises(ValueError, match=message):
        await blocks.lift(stage.enforcement, None, **args)
    assert stage.check(make_identity("bob"), CTX) is not None


async def test_naming_the_alert_never_brings_back_a_lifted_measure(make_stage, redis_url):
    stage = await make_stage("redis", redis_url)
    now = T0.timestamp()
    m = Measure("bob", "block", "manual", now + 600, since=now)
    await stage.enforcement.impose(m)
    await stage.enforcement.lift("bob", "block")
    assert await stage.enforcement.attach_alert(m, "01ALERT") is False  # lifted meanwhile: compare-and-set fails
    assert await blocks.active(stage.enforcement, now) == []
    assert stage.check(make_identity("bob"), CTX) is None


async def test_the_memory_backend_lists_and_lifts_its_own_state(make_stage):
    stage = await make_stage("memory")
    now = T0.timestamp()
    await stage.enforcement.impose(Measure("bob", "block", "manual", now + 600, since=now))
    assert [m.user for m in await blocks.active(stage.enforcement, now)] == ["bob"]
    (lifted,) = await blocks.lift(stage.enforcement, None, user="bob", actor="heidi", note="ok", now=now)
    assert lifted.measure.user == "bob" and stage.check(make_identity("bob"), CTX) is None


async def test_a_second_gateway_sharing_redis_stops_refusing_when_the_first_lifts(gateway_with_signals, redis_url):
    """Through two real gateways in front of the demo CRM: blocked on both, lifted on one, served on both."""
    (one, stage1, _), (two, stage2, _) = [await gateway_with_signals(redis_url, name=n) for n in ("one", "two")]
    resp = await one.post("/api/customers/bulk-delete", json={"ids": list(range(1, 26))}, headers=auth("grace"))
    assert resp.status == 200, await resp.text()
    await stage1.drain()
    await until(lambda: stage2.check(make_identity("grace"), CTX) is not None)
    assert (await two.get("/api/customers/40", headers=auth("grace"))).status == 403
    started = time.perf_counter()
    await blocks.lift(stage1.enforcement, None, user="grace", actor="heidi", note="planned purge", now=stage1.now())
    while (resp := await two.get("/api/customers/40", headers=auth("grace"))).status == 403:
        assert time.perf_counter() - started < 2.0, "the second gateway still refuses"
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    assert resp.status == 200
    assert (await one.get("/api/customers/40", headers=auth("grace"))).status == 200
    print(f"second gateway served again {elapsed * 1000:.1f} ms after the lift")
