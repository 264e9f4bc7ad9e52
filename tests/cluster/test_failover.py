"""A node killed mid-run, measured through the real gateway: a master of a Redis Cluster (its replica
takes over after cluster-node-timeout) and the primary behind Redis Sentinel (the sentinels promote
the replica). Each test starts its own processes; the figures are printed (pytest -s) and the
README's "Redis Cluster and Sentinel" section states them."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.redishealth import STORAGE_ERRORS
from gateway.signals.counters import user_prefix
from gateway.signals.enforcement import STATE_KEY, Measure
from tests.cluster.failover import EXPORT, READ, measure, settle
from tests.cluster.test_cluster_enforcement import arrives
from tests.integration.conftest import auth

pytestmark = pytest.mark.slow

CONFIG = {"reload_interval": 0.5, "reconnect_min": 0.1, "reconnect_max": 0.5, "recent_requests": 200}


async def test_a_killed_cluster_master_fails_closed_until_its_replica_takes_over_and_loses_nothing_counted(
    gateway_with_signals, own_cluster
):
    client, stage, _ = await gateway_with_signals(own_cluster.url, **CONFIG)
    victim = own_cluster.master_of(user_prefix("grace"))
    other = "svc-reporting"  # exports (from the office network), and its keys are on another master
    assert own_cluster.master_of(user_prefix(other)) != victim

    result = await measure(client, stage, "grace", lambda: own_cluster.kill(victim), others=(other,))
    print(f"\ncluster master killed: {result}")

    assert own_cluster.master_of(user_prefix("grace")) != victim  # a replica serves the slots now
    assert result.lost == 0 and "signals-data-lost" not in result.problems
    assert result.statuses[f"grace {READ}"] == {200}  # fail mode open: reads served throughout
    assert 503 in result.statuses[f"grace {EXPORT}"]  # fail mode closed until the replica took over
    assert 503 in result.statuses[f"{other} {EXPORT}"]  # also for a user whose master never stopped
    assert "signals-redis-unavailable" in result.problems
    assert result.recovery_s < 15


async def test_a_killed_sentinel_primary_is_replaced_and_the_gateway_follows_it(gateway_with_signals, sentinels):
    client, stage, _ = await gateway_with_signals(sentinels.url, **CONFIG)
    result = await measure(client, stage, "grace", lambda: sentinels.kill(sentinels.primary))
    print(f"\nsentinel primary killed: {result}")

    assert sentinels.current_primary() == sentinels.replica
    assert result.lost == 0 and "signals-data-lost" not in result.problems
    assert result.statuses[f"grace {READ}"] == {200}
    assert 503 in result.statuses[f"grace {EXPORT}"]  # fail mode closed while the primary was gone
    assert "signals-redis-unavailable" in result.problems
    assert result.recovery_s < 15


async def test_a_master_lost_with_its_replica_takes_the_whole_cluster_down_and_every_user_fails_closed(
    gateway_with_signals, own_cluster
):
    client, stage, _ = await gateway_with_signals(own_cluster.url, **{**CONFIG, "fail_mode": {"default": "closed"}})
    victim = own_cluster.master_of(user_prefix("grace"))
    assert own_cluster.master_of(user_prefix("alice")) != victim
    assert (await client.get(READ, headers=auth("alice"))).status == 404  # served (out of alice's scope)
    await settle(stage)

    start = time.monotonic()
    own_cluster.kill(own_cluster.replica_of(victim))
    own_cluster.kill(victim)
    answers: dict[str, set[int]] = {"grace": set(), "alice": set()}
    while time.monotonic() - start < 10 and not (503 in answers["alice"] and 503 in answers["grace"]):
        for user in answers:
            answers[user].add((await client.get(READ, headers=auth(user))).status)
        await settle(stage)
        await asyncio.sleep(0.1)
    health = await (await client.get("/_gw/health")).json()
    print(
        f"\nmaster and replica killed: {time.monotonic() - start:.2f} s to 503 for both; {answers}; {health['signals']['problems']}"
    )

    assert 503 in answers["alice"]  # alice's keys are on a master that still runs: fails closed all the same
    assert 503 in answers["grace"]
    assert health["signals"]["problems"] and health["status"] != "ok"


async def test_blocks_still_reach_the_other_gateway_after_the_master_holding_them_failed_over(
    gateway_with_signals, own_cluster, clock
):
    (_, stage1, _), (two, stage2, _) = [
        await gateway_with_signals(own_cluster.url, name=n, **CONFIG) for n in ("one", "two")
    ]
    victim = own_cluster.master_of(STATE_KEY)  # the enforcement hash; the channel hashes to the same slot
    await stage1.enforcement.impose(Measure("grace", "block", "mass-delete", clock().timestamp() + 600))
    await arrives(stage2, "grace", "block")

    start = time.monotonic()
    own_cluster.kill(victim)
    while True:  # each supervisor notices its subscription broke, re-subscribes and reloads the hash
        try:
            await stage1.enforcement.impose(Measure("carol", "block", "mass-delete", clock().timestamp() + 600))
            break
        except STORAGE_ERRORS:
            assert time.monotonic() - start < 15, "the enforcement hash was not writable again"
            await asyncio.sleep(0.1)
    await arrives(stage2, "carol", "block", timeout=10)
    print(f"\nenforcement master killed: a new block reached gateway two {time.monotonic() - start:.2f} s after")

    assert own_cluster.master_of(STATE_KEY) != victim
    assert "grace" in {m.user for m in await stage2.enforcement.active(stage2.now())}  # replicated, kept
    assert (await two.get(READ, headers=auth("carol"))).status == 403
