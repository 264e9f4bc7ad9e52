"""Issue 15, point 4: the live history is kept in Redis, so a restarted scorer scores as before.

Daily restarts used to start every user from the model's history again (false alerts 8.0 -> 10.0
per 1,000); here a scorer restarted between days gives the very scores of one that never stopped.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from gateway.scoring import ScoringConfig, build_scorer
from tests.detectors.conftest import CollectingAlerts, at, record

pytestmark = pytest.mark.slow  # a model load (skops) and a replay: about a second each

NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)


def day_of_work(user: str, day: int) -> list[dict]:
    """Busier and quieter days over the same records: relative and familiarity features need the past."""
    return [record(user, at(day, 9, i * 3), returned=5, ids=range(i, i + 5)) for i in range(8 + 5 * (day % 4))]


async def scorer_on(redis_url, model_dir):
    client = aioredis.from_url(redis_url)
    config = ScoringConfig(model_dir=str(model_dir), batch_interval=3600, watch_interval=0)
    scorer = build_scorer(config, alerts=CollectingAlerts(), clock=lambda: NOW, redis=client)
    await scorer.load()
    return scorer, client


async def feed(scorer, days, user="carol"):
    for day in days:
        for r in day_of_work(user, day):
            scorer.submit(None, r, None)
        await scorer.drain()


async def test_a_restart_between_days_scores_as_a_scorer_that_never_stopped(redis_url, model_dir):
    steady, client = await scorer_on(redis_url, model_dir)
    await feed(steady, range(2, 10), user="steady")
    expected = await steady.live_score("steady")
    await client.aclose()

    first, client = await scorer_on(redis_url, model_dir)
    await feed(first, range(2, 6))
    await first.stop()
    await client.aclose()
    restarted, client = await scorer_on(redis_url, model_dir)
    await feed(restarted, range(6, 10))
    assert await restarted.live_score("carol") == pytest.approx(expected, abs=1e-9)
    assert sorted(restarted.views["carol"].agg.history["carol"].days) == [f"2026-03-0{d}" for d in range(2, 9)]
    await client.aclose()


async def test_the_same_score_before_and_after_a_restart(redis_url, model_dir):
    scorer, client = await scorer_on(redis_url, model_dir)
    await feed(scorer, range(2, 10))
    before = await scorer.live_score("carol")
    await scorer.stop()
    await client.aclose()
    again, client = await scorer_on(redis_url, model_dir)
    assert again.views == {}
    assert await again.live_score("carol") == pytest.approx(before, abs=1e-9)
    await client.aclose()


async def test_the_closed_days_are_stored_in_redis_under_the_users_hash_tag(redis_url, model_dir):
    scorer, client = await scorer_on(redis_url, model_dir)
    await feed(scorer, range(2, 6))
    keys = {k.decode() for k in await client.keys("crmgw:det:*")}
    assert {"crmgw:det:{u:carol}:ev", "crmgw:det:{u:carol}:hist", "crmgw:det:{u:carol}:seq"} <= keys
    assert all(k.startswith("crmgw:det:{u:carol}:") for k in keys)
    through = int(await client.hget("crmgw:det:{u:carol}:hist", "through_ms"))
    assert datetime.fromtimestamp(through / 1000, UTC).date().isoformat() == "2026-03-04"
    assert await client.zcard("crmgw:det:{u:carol}:ev") == len(day_of_work("carol", 5))  # the open day's only
    await client.aclose()


async def test_an_unreachable_redis_is_counted_and_shown_in_health(model_dir):
    from tests.ops.conftest import free_port

    scorer, client = await scorer_on(f"redis://127.0.0.1:{free_port()}/0", model_dir)
    await feed(scorer, [2])
    health = scorer.health()
    assert health["errors"] == 1 and "detector-scoring-failing" in health["problems"]
    await client.aclose()
