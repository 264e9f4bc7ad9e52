"""Echo days join the open alert (issue 15's acceptance): a detector alert on a later day of a user
who still has an OPEN alert of that type, raised less than ``join_days`` ago, is added to it
(``recurred``) instead of becoming a new item in the queue; a closed alert is never joined.

Through the alert store on a real Redis (and the journal alone), with a clock the test moves.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.alerts.conftest import raise_kwargs

DAY0 = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # the detector raises a user-day when it closes


class Clock:
    def __init__(self, now: datetime = DAY0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def day(self, n: int) -> str:
        """Move to day ``n`` after DAY0; its window (the user's day, as the detector names it)."""
        self.now = DAY0 + timedelta(days=n)
        return self.now.date().isoformat()


def detector(window: str, score: float = 2.0, level: str = "medium", **over):
    fields = {
        "type": "detector-anomaly",
        "rule": "detector",
        "source": "detector",
        "window": window,
        "score": score,
        "level": level,
        "summary": f"alice on {window}: records viewed 300",
        "evidence": {"day": window, "features": {"sequential_views": {"value": 300}}},
    }
    return raise_kwargs(**{**fields, **over})


class Recording:
    """A real sink (the store's protocol) that keeps what it was told."""

    def __init__(self):
        self.events: list[tuple[str, str, int]] = []

    def submit(self, event, alert):
        self.events.append((event, alert["id"], alert["recurrences"]))

    async def start(self):
        pass

    async def close(self):
        pass

    def health(self):
        return {"sink": "recording"}


async def test_six_echo_days_join_the_open_alert_and_the_queue_holds_one(make_store, redis_url):
    clock = Clock()
    sink = Recording()
    store = await make_store(redis_url, clock=clock, sinks=[sink])
    first = await store.raise_alert(**detector(clock.day(0), score=3.0))
    scores = [2.1, 4.5, 1.7, 2.2, 2.0, 1.9]
    ids = [await store.raise_alert(**detector(clock.day(n), score=s)) for n, s in enumerate(scores, 1)]
    assert set(ids) == {first}
    alert = await store.get(first)
    assert alert.recurrences == 6 and alert.count == 7 and alert.is_open
    assert alert.windows == [f"2026-03-{d:02d}" for d in range(3, 9)] and alert.window == "2026-03-02"
    assert alert.score == 4.5  # the max, not the latest
    recurred = [h for h in alert.history if h.action == "recurred"]
    assert [h.to.split(":")[0] for h in recurred] == alert.windows
    assert recurred[1].to.startswith("2026-03-04: score 4.5, alice on 2026-03-04: records viewed 300")
    assert [(o.window, o.evidence["day"]) for o in alert.occurrences] == [(w, w) for w in alert.windows]
    assert [a.id for a in await store.list()] == [first]
    assert (await store.counts())["by_status"]["open"] == 1
    assert [e for e, _, _ in sink.events] == ["alert.raised"] + ["alert.recurred"] * 6
    assert [n for _, _, n in sink.events] == list(range(7))


async def test_a_closed_alert_is_never_joined_a_new_one_is_raised(make_store, redis_url):
    clock = Clock()
    store = await make_store(redis_url, clock=clock)
    first = await store.raise_alert(**detector(clock.day(0)))
    await store.transition(first, actor="heidi", verdict="false_positive", determination="authorized_activity")
    second = await store.raise_alert(**detector(clock.day(1)))
    assert second != first
    closed = await store.get(first)
    assert closed.status == "false_positive" and closed.recurrences == 0 and closed.rev == 2
    third = await store.raise_alert(**detector(clock.day(2)))
    assert third == second  # the new one is open: the next day joins it
    assert (await store.get(second)).recurrences == 1


async def test_an_acknowledged_alert_is_still_open_and_is_joined(make_store, redis_url):
    clock = Clock()
    store = await make_store(redis_url, clock=clock)
    first = await store.raise_alert(**detector(clock.day(0)))
    await store.transition(first, actor="heidi", status="acknowledged")
    assert await store.raise_alert(**detector(clock.day(1))) == first
    alert = await store.get(first)
    assert alert.status == "acknowledged" and alert.assignee == "heidi" and alert.recurrences == 1


async def test_past_the_join_window_a_new_alert_is_raised(make_store, redis_url):
    clock = Clock()
    store = await make_store(redis_url, clock=clock, join_days=7)
    first = await store.raise_alert(**detector(clock.day(0)))
    assert await store.raise_alert(**detector(clock.day(6))) == first
    later = await store.raise_alert(**detector(clock.day(8)))  # first raised 8 days ago
    assert later != first
    assert len(await store.list()) == 2


async def test_the_same_window_again_is_a_repeat_not_a_second_recurrence(make_store, redis_url):
    clock = Clock()
    store = await make_store(redis_url, clock=clock)
    first = await store.raise_alert(**detector(clock.day(0)))
    window = clock.day(1)
    await store.raise_alert(**detector(window, score=2.0))
    again = await store.raise_alert(**detector(window, score=2.6))  # the scorer re-raises a grown score
    assert again == first
    alert = await store.get(first)
    assert alert.recurrences == 1 and alert.count == 3 and alert.score == 2.6
    assert [h.action for h in alert.history] == ["raised", "recurred"]


async def test_a_recurrence_at_a_higher_level_escalates_the_alert(make_store, redis_url):
    clock = Clock()
    sink = Recording()
    store = await make_store(redis_url, clock=clock, sinks=[sink])
    first = await store.raise_alert(**detector(clock.day(0), level="medium"))
    await store.raise_alert(**detector(clock.day(1), level="critical", score=5.0))
    alert = await store.get(first)
    assert alert.level == "critical"
    assert [(h.action, h.to) for h in alert.history][1:] == [
        ("recurred", "2026-03-03: score 5, alice on 2026-03-03: records viewed 300"),
        ("escalated", "critical"),
    ]
    assert sink.events[-1][0] == "alert.escalated"


@pytest.mark.parametrize(
    ("over", "kw"),
    [
        ({"user": "bob"}, {}),  # another user
        ({"type": "bulk-export"}, {}),  # a type that does not join (threshold alerts: see intake.py)
        ({}, {"join_days": 0}),  # joining turned off
        ({}, {"join_types": ["mass-delete"]}),  # the detector's type not listed
    ],
)
async def test_other_users_types_or_settings_do_not_join(make_store, redis_url, over, kw):
    clock = Clock()
    store = await make_store(redis_url, clock=clock, **kw)
    first = await store.raise_alert(**detector(clock.day(0)))
    other = await store.raise_alert(**detector(clock.day(1), **over))
    assert other != first
    assert (await store.get(first)).recurrences == 0


async def test_two_instances_sharing_redis_join_one_alert_even_when_racing(make_store, redis_url, tmp_path):
    clock = Clock()
    a = await make_store(redis_url, journal=tmp_path / "a.jsonl", writer="a", clock=clock)
    b = await make_store(redis_url, journal=tmp_path / "b.jsonl", writer="b", clock=clock)
    first = await a.raise_alert(**detector(clock.day(0)))
    assert await b.raise_alert(**detector(clock.day(1))) == first  # b never saw it but in Redis
    window = clock.day(2)
    ids = await asyncio.gather(*[(a if i % 2 else b).raise_alert(**detector(window, score=2 + i)) for i in range(6)])
    assert set(ids) == {first}
    alert = await a.get(first)
    assert alert.recurrences == 2 and alert.windows == ["2026-03-03", "2026-03-04"]
    assert alert.count == 8 and alert.score == 7
    assert [h.action for h in alert.history].count("recurred") == 2
    assert [x.id for x in await b.list()] == [first]


async def test_without_redis_the_journal_joins_too_and_after_a_restart(make_store, tmp_path):
    clock = Clock()
    journal = tmp_path / "alone.jsonl"
    store = await make_store(None, journal=journal, clock=clock)
    first = await store.raise_alert(**detector(clock.day(0)))
    assert await store.raise_alert(**detector(clock.day(1))) == first
    await store.close()
    restarted = await make_store(None, journal=journal, clock=clock)
    assert await restarted.raise_alert(**detector(clock.day(2))) == first
    assert (await restarted.get(first)).recurrences == 2


async def test_a_joined_alert_reaches_redis_after_a_flush_without_a_duplicate(make_store, redis_url):
    import redis.asyncio as aioredis

    clock = Clock()
    store = await make_store(redis_url, clock=clock)
    first = await store.raise_alert(**detector(clock.day(0)))
    client = aioredis.from_url(redis_url)
    await client.flushall()
    await client.aclose()
    assert await store.raise_alert(**detector(clock.day(1))) == first
    assert [a.id for a in await store.list()] == [first]


async def test_the_verdict_of_a_joined_alert_covers_every_day_for_training(make_store, redis_url):
    clock = Clock()
    store = await make_store(redis_url, clock=clock)
    first = await store.raise_alert(**detector(clock.day(0)))
    await store.raise_alert(**detector(clock.day(1), score=2.5))
    await store.raise_alert(**detector(clock.day(2)))
    await store.transition(first, actor="heidi", verdict="benign_true_positive", determination="authorized_activity")
    rows = await store.export_verdicts()
    assert [(r["day"], r["window"], r["alert_id"]) for r in rows] == [
        ("2026-03-02", "2026-03-02", first),
        ("2026-03-03", "2026-03-03", first),
        ("2026-03-04", "2026-03-04", first),
    ]
    assert {r["verdict"] for r in rows} == {"confirmed"} and rows[1]["score"] == 2.5
    assert rows[2]["evidence"]["day"] == "2026-03-04"
    from detectors.labels import Verdict  # the training's strict reader takes every line

    assert [Verdict.model_validate(r).the_day for r in rows] == ["2026-03-02", "2026-03-03", "2026-03-04"]
