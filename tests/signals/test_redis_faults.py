"""Issue 11 point 5 (a): a Redis that answers PING but refuses writes is degraded until a write succeeds.

The shared test redis-server is set to ``maxmemory 1`` with ``noeviction`` (``full_redis`` restores
both settings whatever happens): every write is then refused with ``OOM command not allowed``, while
PING and reads still answer. Seen before: health flipped back to ok on every PING and a third of the
exports were served and never counted.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.metrics import Metrics
from gateway.model import Flow
from tests.integration.conftest import auth
from tests.policy.factories import make_ctx, make_identity
from tests.signals.factories import export, later, record

FLOW = Flow(request_id="x")


async def test_a_full_redis_answers_ping_but_signals_stay_degraded_until_a_write_succeeds(
    make_stage, redis_url, full_redis, admin
):
    stage = await make_stage("redis", redis_url, reconnect_min=0.02, reconnect_max=0.05)
    metrics = Metrics()
    stage.attach_metrics(metrics)
    stage.submit(FLOW, record(when=later(0)), None)
    await stage.drain()
    assert (stage.health()["state"], stage.health()["counted"]) == ("ok", 1)

    await full_redis.fill()
    stage.submit(FLOW, record(when=later(1)), None)
    await stage.drain()
    for _ in range(3):  # each of these used to be enough to say "ok" again
        assert await admin.ping() is True
        assert await stage.probe() is False
    health = stage.health()
    assert (health["state"], health["connected"], health["degraded"]) == ("refusing-writes", True, True)
    assert health["problems"] == ["signals-redis-refusing-writes"]
    assert "OutOfMemoryError" in health["last_error"] and (health["dropped"], health["counted"]) == (1, 1)
    exposed = metrics.render().decode()
    assert "crmgw_redis_up 0.0" in exposed
    assert 'crmgw_signals_degraded_total{reason="redis-refusing-writes"} 1.0' in exposed
    alice = make_identity("alice")
    assert (
        stage.check(alice, make_ctx("customers.export")).status,
        stage.check(alice, make_ctx("customers.delete")).reason,
    ) == (503, "signals-unavailable")
    assert stage.check(alice, make_ctx("customers.view")) is None  # reads fail open

    await full_redis.relieve()
    assert await stage.probe() is True  # the epoch write went through
    assert stage.health()["problems"] == [] and stage.check(alice, make_ctx("customers.export")) is None
    stage.submit(FLOW, record(when=later(2)), None)
    await stage.drain()
    assert stage.health()["counted"] == 2
    assert "crmgw_redis_up 1.0" in metrics.render().decode()


async def test_an_oom_refuses_the_whole_counting_script_so_nothing_is_half_counted(
    make_stage, redis_url, full_redis, admin
):
    stage = await make_stage("redis", redis_url)
    stage.submit(FLOW, export(n=300, when=later(0)), None)
    await stage.drain()
    before = {k: await admin.dump(k) for k in [k async for k in admin.scan_iter("crmgw:{u:alice}:*")]}
    await full_redis.fill()
    stage.submit(FLOW, export(n=300, when=later(1)), None)
    await stage.drain()
    after = {k: await admin.dump(k) for k in [k async for k in admin.scan_iter("crmgw:{u:alice}:*")]}
    assert after == before  # not one key of the user changed


@pytest.mark.slow  # over a second
async def test_exports_are_refused_while_redis_refuses_writes_and_counted_again_after(
    gateway_with_signals, redis_url, full_redis, admin
):
    client, stage, sink = await gateway_with_signals(
        redis_url, reload_interval=0.02, reconnect_min=0.02, reconnect_max=0.05
    )
    grace = auth("grace", mfa=True)
    resp = await client.get("/api/customers/export.csv", headers=grace)
    assert resp.status == 200
    await resp.read()
    await stage.drain()
    assert stage.health()["counted"] == 1

    await full_redis.fill()
    resp = await client.get("/api/customers/1", headers=auth("grace"))  # reads are served ...
    assert resp.status == 200
    await stage.drain()  # ... and their counting is refused: degraded from here on
    statuses = []
    for _ in range(30):  # meanwhile the supervisor keeps checking (and Redis keeps answering PING)
        statuses.append((await client.get("/api/customers/export.csv", headers=grace)).status)
        health = await (await client.get("/_gw/health")).json()
        assert "signals-redis-refusing-writes" in health["degraded"], health["degraded"]
        await asyncio.sleep(0.01)
    assert statuses == [503] * 30
    assert await admin.ping() is True

    await full_redis.relieve()
    for _ in range(200):  # the supervisor's next epoch write ends it
        if not (await (await client.get("/_gw/health")).json())["degraded"]:
            break
        await asyncio.sleep(0.02)
    assert (await (await client.get("/_gw/health")).json())["status"] == "ok"
    resp = await client.get("/api/customers/export.csv", headers=grace)
    assert resp.status == 200
    await resp.read()
    await stage.drain()
    # counted again: the second export counted (300 + 300 crosses bulk-export), none of the 30 refused
    (alert,) = sink.alerts
    assert (alert["rule"], alert["evidence"]["value"]) == ("bulk-export", 600)


async def test_another_stores_write_does_not_vouch_for_counting(make_stage, redis_url, full_redis):
    """The tracker is shared with the alert and approval stores (one per Redis URL); their writes
    mark it ok. Fail-closed operations also need the signals' own last write to have gone through:
    a failure of the counters alone (a cluster shard, a script error) must keep refusing them."""
    stage = await make_stage("redis", redis_url, reconnect_min=5, reconnect_max=5)  # no probe meanwhile
    await full_redis.fill()
    stage.submit(FLOW, record(when=later(0)), None)
    await stage.drain()  # the counting batch is refused
    await full_redis.relieve()
    stage.link.wrote()  # what an alert store's successful write does to the shared tracker
    alice = make_identity("alice")
    assert stage.link.ok and not stage.counting_ok
    assert stage.check(alice, make_ctx("customers.export")).reason == "signals-unavailable"
    assert "signals-redis-refusing-writes" in stage.health()["problems"]
    assert await stage.probe() is True  # the signals' own write: counting works again
    assert stage.check(alice, make_ctx("customers.export")) is None
