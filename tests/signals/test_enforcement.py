"""Block and step-up reach every instance: two SignalsStages on one real Redis."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis

from gateway.model import Flow
from gateway.signals.enforcement import STATE_KEY, Measure
from tests.conftest import RULES
from tests.policy.factories import make_ctx, make_identity
from tests.signals.factories import NIGHT, T0, delete, later, load, view

FLOW = Flow(request_id="x")
CTX = make_ctx("customers.view")


@pytest.fixture
def shipped():
    rules, errors = load(RULES / "anomalies.yaml")
    assert rules is not None, errors
    return SimpleNamespace(anomalies=rules)


async def until(predicate, timeout: float = 5.0) -> None:
    """Wait for another instance's pub/sub delivery (fails the test after ``timeout``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_two_instances_count_the_same_user_together(make_stage, redis_url, shipped, sink):
    a, b = await make_stage("redis", redis_url), await make_stage("redis", redis_url)
    a.submit(FLOW, delete(n=15, when=later(0)), shipped)
    await a.drain()
    b.submit(FLOW, delete(n=15, when=later(5)), shipped)
    await b.drain()
    assert sink.rules() == ["mass-delete"]  # 30 deleted across two instances
    assert sink.alerts[0]["evidence"]["value"] == 30


async def test_a_block_on_one_instance_refuses_the_next_request_on_the_other(make_stage, redis_url, shipped):
    a, b = await make_stage("redis", redis_url), await make_stage("redis", redis_url)
    alice = make_identity("alice")
    a.submit(FLOW, delete(n=25), shipped)
    await a.drain()
    assert a.check(alice, CTX).reason == "anomaly-block"  # at once on the deciding instance
    await until(lambda: b.check(alice, CTX) is not None)
    assert (b.check(alice, CTX).reason, b.check(alice, CTX).rule) == ("anomaly-block", "mass-delete")


async def test_a_step_up_propagates_and_mfa_satisfies_it(make_stage, redis_url, shipped):
    a, b = await make_stage("redis", redis_url), await make_stage("redis", redis_url)
    for rec in (view(rid=1, country="FR", when=NIGHT - timedelta(days=3)), view(rid=50, country="BR", when=NIGHT)):
        a.submit(FLOW, rec, shipped)
    await a.drain()
    await until(lambda: b.check(make_identity("alice"), CTX) is not None)
    assert b.check(make_identity("alice"), CTX).status == 401
    assert b.check(make_identity("alice", mfa=True), CTX) is None


async def test_an_instance_started_later_loads_measures_in_force(make_stage, redis_url, shipped):
    a = await make_stage("redis", redis_url)
    a.submit(FLOW, delete(n=25), shipped)
    await a.drain()
    late = await make_stage("redis", redis_url)  # start() reloads from Redis before serving
    assert late.check(make_identity("alice"), CTX).reason == "anomaly-block"


async def test_reload_is_the_backstop_and_prunes_expired_measures(make_stage, redis_url, signals_clock):
    stage = await make_stage("redis", redis_url)
    client = aioredis.from_url(redis_url)
    try:
        now = T0.timestamp()
        live, old = Measure("bob", "block", "manual", now + 600), Measure("carol", "step_up", "manual", now - 1)
        await client.hset(STATE_KEY, mapping={"block:bob": live.to_json(), "step_up:carol": old.to_json()})
        await stage.enforcement.reload(now)  # as the periodic reload would, without pub/sub
        assert stage.check(make_identity("bob"), CTX).rule == "manual"
        assert await client.hkeys(STATE_KEY) == [b"block:bob"]
    finally:
        await client.aclose()


async def test_measures_are_stored_with_a_ttl_and_lifts_propagate(make_stage, redis_url, shipped):
    a, b = await make_stage("redis", redis_url), await make_stage("redis", redis_url)
    a.submit(FLOW, delete(n=25), shipped)
    await a.drain()
    client = aioredis.from_url(redis_url)
    try:
        assert 3500 < await client.ttl(STATE_KEY) <= 3601
    finally:
        await client.aclose()
    await until(lambda: b.check(make_identity("alice"), CTX) is not None)
    await a.enforcement.lift("alice", "block")
    await until(lambda: b.check(make_identity("alice"), CTX) is None)
    assert a.check(make_identity("alice"), CTX) is None
