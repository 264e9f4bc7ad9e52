"""The live detector's echo day joins its open alert: the scorer (gateway/scoring) raises
``detector-anomaly`` through the real alert store on Redis, on two days of the same user."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.scoring import ScoringConfig, build_scorer
from tests.detectors.conftest import at, model_dir, record, verdicts, world_a  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow  # trains a small model once per session, then replays and scores


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def enumeration(user: str, day: int) -> list[dict]:
    return [
        record(user, at(day, 9, i / 6), operation="customers.view", resource_id=str(5000 + i), ids=(5000 + i,))
        for i in range(300)
    ]


def ordinary(user: str, day: int) -> list[dict]:
    return [record(user, at(day, 9, i * 10), returned=10, ids=range(i, i + 10)) for i in range(12)]


async def feed(scorer, records) -> None:
    for r in records:
        scorer.submit(None, r, None)
        if len(scorer.queue) >= 100:
            await scorer.drain()
    await scorer.drain()


async def test_the_detectors_alert_on_the_next_day_joins_the_open_one(make_store, redis_url, model_dir):
    clock = Clock(datetime(2026, 3, 9, 18, tzinfo=UTC))
    store = await make_store(redis_url, clock=clock)
    scorer = build_scorer(ScoringConfig(model_dir=str(model_dir), watch_interval=0), alerts=store, clock=clock)
    await scorer.load()
    await feed(scorer, [r for day in range(2, 7) for r in ordinary("dave", day)] + enumeration("dave", 9))
    [first] = await store.list(user="dave")
    assert first.type == "detector-anomaly" and first.window == "2026-03-09"
    clock.now = datetime(2026, 3, 10, 18, tzinfo=UTC)
    await feed(scorer, enumeration("dave", 10))
    [joined] = await store.list(user="dave")
    assert joined.id == first.id and joined.windows == ["2026-03-10"] and joined.recurrences == 1
    assert joined.occurrences[-1].evidence["day"] == "2026-03-10"
    assert [h.action for h in joined.history if h.action == "recurred"] == ["recurred"]
