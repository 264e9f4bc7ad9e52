"""An escalation re-opens an acknowledged alert (review of issue 16): a critical echo day joined to
an acknowledged low alert must not hide inside it. Through the store on a real Redis; the join's
other semantics (tests/alerts/test_join.py) stay."""

from __future__ import annotations

from gateway.alerts import lifecycle
from gateway.alerts.model import Alert
from tests.alerts.conftest import raise_kwargs
from tests.alerts.test_join import Clock, Recording, detector


async def test_a_joined_window_at_a_higher_level_reopens_an_acknowledged_alert(make_store, redis_url):
    clock = Clock()
    sink = Recording()
    store = await make_store(redis_url, clock=clock, sinks=[sink])
    first = await store.raise_alert(**detector(clock.day(0), level="low", score=0.6))
    await store.transition(first, actor="erin", status="acknowledged", note="looked, meh")
    assert await store.raise_alert(**detector(clock.day(2), level="critical", score=0.99)) == first
    alert = await store.get(first)
    assert (alert.status, alert.level, alert.assignee) == ("open", "critical", "erin")
    assert [(h.action, h.actor, h.from_, h.to) for h in alert.history][-2:] == [
        ("escalated", "gateway", "low", "critical"),
        ("reopened", "gateway", "acknowledged", "open"),
    ]
    assert sink.events[-1][0] == "alert.escalated"
    assert [a.id for a in await store.list(status="open")] == [first]
    counts = await store.counts()
    assert counts["by_status"]["open"] == 1 and counts["by_status"]["acknowledged"] == 0


async def test_a_repeat_at_a_higher_level_reopens_it_and_one_at_the_same_level_does_not(make_store, redis_url):
    store = await make_store(redis_url)
    first = await store.raise_alert(**raise_kwargs(level="high"))
    await store.transition(first, actor="erin", status="acknowledged")
    await store.raise_alert(**raise_kwargs(level="high", score=2.0))
    assert (await store.get(first)).status == "acknowledged"  # nothing worse: the analyst's state stays
    await store.raise_alert(**raise_kwargs(level="critical", score=3.0))
    alert = await store.get(first)
    assert (alert.status, alert.assignee, alert.history[-1].action) == ("open", "erin", "reopened")


def test_an_open_alert_escalated_gets_no_reopened_entry():
    alert = Alert(id="A1", time="t", user="bob", type="x", level="low", score=1, summary="s")
    up = lifecycle.repeat(alert, stamp="t2", level="high", score=2, summary="s", evidence={}, max_occurrences=5)
    assert up.status == "open" and [h.action for h in up.history] == ["escalated"]
