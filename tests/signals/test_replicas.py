"""Two gateway replicas sharing one Redis, a round-robin client, counting in batches (issue 14).

Each replica counts in batches (``batch_wait``): its events reach Redis late and out of order with
the other replica's. Enumeration by consecutive ids, spread over the replicas (each sees every other
id), must still be detected, and the block it triggers must be in force on both replicas; the
delays are measured and printed.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from itertools import cycle

import pytest

from gateway.app import create_app
from gateway.signals import SignalsConfig, build_signals
from tests.conftest import RULES, open_rules
from tests.integration.conftest import auth, gateway_settings
from tests.signals.factories import CollectingSink

BATCH_WAIT = 0.05  # long enough that every batch of one replica lands after the other's events
ENUMERATION_ALERT = '    action: alert\n    summary: "{user} opened {value} {resource} records by consecutive ids'
ENUMERATION_BLOCK = (
    '    action: block\n    action_ttl: 1h\n    summary: "{user} opened {value} {resource} records by consecutive ids'
)


@pytest.fixture
def block_rules(tmp_path):
    """The shipped rules, with the enumeration rule blocking instead of alerting."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    text = (rules / "anomalies.yaml").read_text()
    assert ENUMERATION_ALERT in text
    (rules / "anomalies.yaml").write_text(text.replace(ENUMERATION_ALERT, ENUMERATION_BLOCK))
    return rules


@pytest.fixture
def replicas(aiohttp_client, tmp_path, clock, crm, redis_url):
    """``await replicas(rules)`` -> [(client, stage, sink)] x 2: two gateways on one Redis."""

    async def factory(rules, batch_wait: float = BATCH_WAIT):
        out = []
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
            settings = gateway_settings(str(crm.make_url("")).rstrip("/"), tmp_path / name, rules)
            sink = CollectingSink()
            config = SignalsConfig(backend="redis", batch_wait=batch_wait, batch_size=1000)
            stage = build_signals(config, redis_url=redis_url, alerts=sink, clock=clock)
            client = await aiohttp_client(create_app(settings, open_rules(rules), clock=clock, signals=stage))
            out.append((client, stage, sink))
        return out

    return factory


async def test_enumeration_spread_over_two_batching_replicas_is_detected(replicas):
    gateways = await replicas(RULES)
    turn = cycle(gateways)
    for rid in range(1, 21):  # replica one sees the odd ids, replica two the even ones
        client, _, _ = next(turn)
        resp = await client.get(f"/api/customers/{rid}", headers=auth("grace"))
        assert resp.status == 200
    for _, stage, _ in gateways:
        await stage.drain()
    alerts = [a for _, _, sink in gateways for a in sink.alerts]
    assert [(a["rule"], a["user"]) for a in alerts] == [("enumeration-sequential", "grace")]
    # ids 1..20 hold 19 adjacent pairs; the view that crossed "more than 15" found 16 of them, or
    # 17 when, arriving out of order, it closed two pairs at once
    assert alerts[0]["evidence"]["value"] in (16, 17)


@pytest.mark.parametrize("batch_wait", [SignalsConfig().batch_wait, BATCH_WAIT], ids=["default", "50ms"])
async def test_a_block_reaches_the_other_replica_within_the_measured_delay(replicas, block_rules, capsys, batch_wait):
    """Ids 1..17 make 16 adjacent pairs (> 15): the 17th view crosses the threshold. The client goes
    on walking ids as fast as it can; the test notes when each replica holds the block and which
    view was first refused there. (Both replicas and the client share one event loop here, so the
    delays include waiting for the loop: separate processes see less.)"""
    gateways = await replicas(block_rules, batch_wait)
    since: dict[int, float] = {}

    async def watch() -> None:  # when each replica's local state holds the block (1 ms polls)
        while len(since) < 2:
            for i, (_, stage, _) in enumerate(gateways):
                if i not in since and "block" in stage.state.active("grace", stage.now()):
                    since[i] = time.monotonic()
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    turn = cycle(enumerate(gateways))
    crossed = 0.0
    refused: dict[int, tuple[int, float]] = {}  # replica -> (id of its first refused view, when)
    sent: list[tuple[float, int]] = []  # (when a view was sent, its status)
    for rid in range(1, 200):
        i, (client, _, _) = next(turn)
        sent.append((time.monotonic(), 0))
        resp = await client.get(f"/api/customers/{rid}", headers=auth("grace"))
        sent[-1] = (sent[-1][0], resp.status)
        if rid == 17:
            crossed = time.monotonic()
        if resp.status == 403:
            assert (await resp.json())["reason"] == "anomaly-block"
            refused.setdefault(i, (rid, time.monotonic()))
        else:
            assert resp.status == 200 and i not in refused  # once refused, refused for good
        if len(refused) == 2:
            break
    await asyncio.wait_for(watcher, timeout=5)
    assert sorted(refused) == [0, 1] and len(since) == 2
    first, last = min(since.values()), max(since.values())
    with capsys.disabled():
        print(
            f"\n[block delay, batch_wait {batch_wait * 1000:.0f} ms] threshold crossed -> block on the first replica "
            f"{(first - crossed) * 1000:.1f} ms, -> on both {(last - crossed) * 1000:.1f} ms (pub/sub hop "
            f"{(last - first) * 1000:.1f} ms); views served after the crossing: "
            f"{max(r for r, _ in refused.values()) - 17 - 1}; first refused ids per replica: {refused}"
        )
    # every view sent once the block was in force on both replicas was refused
    assert all(status == 403 for when, status in sent if when > last)
