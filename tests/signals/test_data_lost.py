"""Issue 11 point 5 (b): counter data lost behind the gateway's back is noticed, shown and alerted.

FLUSHALL on the test Redis stands for every way of losing the data without Redis being "down": a
restart without persistence, a failover to an empty replica.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from gateway.model import Flow
from gateway.signals.epoch import EPOCH_KEY, EpochWatch
from tests.signals.factories import T0, later, record
from tests.signals.test_redis_outage import RedisProcess

FLOW = Flow(request_id="x")


async def count(stage, *records) -> None:
    for rec in records:
        stage.submit(FLOW, rec, None)
    await stage.drain()


async def test_flushall_is_noticed_on_the_next_request_of_a_user_counted_before(make_stage, redis_url, admin, sink):
    stage = await make_stage("redis", redis_url)
    await count(stage, record("alice", when=later(0)))
    first_epoch = stage.health()["epoch"]["id"]
    await admin.flushall()
    await count(stage, record("bob", when=later(1)))  # bob is new to this instance: nothing to tell
    assert stage.health()["data_lost"] is False
    await count(stage, record("alice", when=later(2)))  # alice's keys should be there: they are not
    health = stage.health()
    assert (health["data_lost"], health["degraded"], health["problems"]) == (True, True, ["signals-data-lost"])
    assert health["state"] == "ok"  # Redis itself is fine: counting goes on, from zero
    assert health["epoch"]["id"] != first_epoch and health["epoch"]["losses"] == "1"
    (alert,) = sink.alerts
    assert (alert["type"], alert["source"], alert["level"], alert["window"]) == (
        "signals-data-lost",
        "signals",
        "high",
        health["epoch"]["id"],
    )
    assert alert["evidence"]["users"] == ["alice"] and "crmgw signals rebuild" in alert["summary"]
    await count(stage, record("alice", when=later(3)), record("bob", when=later(4)))
    assert len(sink.alerts) == 1 and stage.health()["losses_reported"] == 1  # told once


async def test_flushall_without_traffic_is_noticed_by_the_epoch_check(make_stage, redis_url, admin, sink):
    stage = await make_stage("redis", redis_url)
    assert await stage.probe() and stage.health()["data_lost"] is False
    await admin.flushall()
    assert await stage.probe() is True  # Redis is up and takes writes ...
    health = stage.health()
    assert health["data_lost"] is True and "epoch key was missing" in health["epoch"]["lost_reason"]
    assert [a["type"] for a in sink.alerts] == ["signals-data-lost"]  # ... but what it held is gone
    assert await admin.hget(EPOCH_KEY, "losses") == b"1"


async def test_an_instance_that_did_not_see_it_learns_the_loss_from_the_epoch(make_stage, redis_url, admin):
    one, two = [await make_stage("redis", redis_url) for _ in range(2)]
    await admin.flushall()
    await one.probe()
    assert await two.probe() is True
    assert two.health()["data_lost"] is True and two.health()["epoch"]["id"] == one.health()["epoch"]["id"]
    assert await admin.hget(EPOCH_KEY, "losses") == b"1"  # one loss, however many instances see it


async def test_a_first_start_and_new_users_are_not_losses(make_stage, redis_url, sink):
    stage = await make_stage("redis", redis_url)
    await count(stage, *(record(user, when=later(i)) for i, user in enumerate(["alice", "bob", "grace", "alice"])))
    assert stage.health()["data_lost"] is False and sink.alerts == []


@pytest.mark.slow
async def test_redis_restarted_without_persistence_is_reported_as_data_lost(make_stage, tmp_path, sink):
    server = RedisProcess(tmp_path, persistent=False)
    await server.start()
    try:
        stage = await make_stage("redis", server.url, reconnect_min=0.05, reconnect_max=0.1)
        await count(stage, record("alice", when=later(0)))
        server.kill()
        await server.start()
        assert await stage.probe() is True
        assert stage.health()["problems"] == ["signals-data-lost"]
        assert [a["type"] for a in sink.alerts] == ["signals-data-lost"]
    finally:
        server.kill()


def test_only_users_counted_within_the_markers_lifetime_count_as_lost():
    watch = EpochWatch(aioredis.from_url("redis://127.0.0.1:1/0"), lambda: T0, marker_ttl=3600)
    assert watch.lost_users([("alice", 0, True), ("bob", 0, True)]) == ()  # first sight: new users
    assert watch.lost_users([("alice", 3_599_000, True), ("bob", 3_601_000, True)]) == ("alice",)
    assert watch.lost_users([("alice", 3_700_000, False)]) == ()  # the marker was there
