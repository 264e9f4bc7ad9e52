"""Blocks and step-ups on a Redis Cluster: two gateways on one real cluster; a measure imposed on
one reaches the other through the cluster's pub/sub (a PUBLISH on any node reaches the subscribers
of every node; redis-py's ClusterPubSub listens on the channel's slot's node)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.signals.enforcement import Measure
from tests.integration.conftest import auth

pytestmark = pytest.mark.slow


async def arrives(stage, user: str, action: str, *, present: bool = True, timeout: float = 5.0) -> float:
    """Seconds until ``stage``'s local state has (or no longer has) the measure."""
    start = time.monotonic()
    while (action in stage.state.active(user, stage.now())) != present:
        assert time.monotonic() - start < timeout, f"{action} for {user} did not {'arrive' if present else 'go'}"
        await asyncio.sleep(0.001)
    return time.monotonic() - start


async def test_a_block_from_a_threshold_on_one_gateway_reaches_the_other(gateway_with_signals, cluster_url):
    (one, stage1, sink1), (two, stage2, _) = [await gateway_with_signals(cluster_url, name=n) for n in ("one", "two")]
    await asyncio.sleep(0.2)  # both supervisors subscribed
    resp = await one.post("/api/customers/bulk-delete", json={"ids": list(range(1, 26))}, headers=auth("grace"))
    assert resp.status == 200
    await stage1.drain()
    assert sink1.rules() == ["mass-delete"]
    delay = await arrives(stage2, "grace", "block")
    print(f"\nblock on gateway one -> gateway two: {delay * 1000:.1f} ms after the threshold fired")
    body = await (await two.get("/api/customers/1", headers=auth("grace"))).json()
    assert body["reason"] == "anomaly-block"


async def test_a_step_up_and_its_lift_reach_the_other_gateway(gateway_with_signals, cluster_url, clock):
    (one, stage1, _), (two, stage2, _) = [await gateway_with_signals(cluster_url, name=n) for n in ("one", "two")]
    await asyncio.sleep(0.2)
    await stage1.enforcement.impose(Measure("grace", "step_up", "new-country-off-hours", clock().timestamp() + 600))
    delay = await arrives(stage2, "grace", "step_up")
    print(f"\nstep-up imposed on gateway one -> gateway two: {delay * 1000:.1f} ms")
    assert (await two.get("/api/customers/1", headers=auth("grace"))).status == 401
    await stage1.enforcement.lift("grace", "step_up")
    await arrives(stage2, "grace", "step_up", present=False)
    assert (await two.get("/api/customers/1", headers=auth("grace"))).status == 200
