"""AlertStore on a real Redis: de-duplication (also across instances), life cycle, replay, restarts."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.alerts.model import InvalidTransition
from tests.alerts.conftest import raise_kwargs


async def test_a_repeat_while_open_adds_evidence_to_the_same_alert(make_store, redis_url):
    store = await make_store(redis_url)
    first = await store.raise_alert(**raise_kwargs(evidence={"rows": 1}))
    again = await store.raise_alert(**raise_kwargs(evidence={"rows": 2}, level="critical", score=0.99))
    assert again == first
    alert = await store.get(first)
    assert alert.count == 2 and alert.level == "critical" and alert.score == 0.99
    assert alert.evidence == {"rows": 1} and alert.occurrences[-1].evidence == {"rows": 2}


async def test_other_user_type_or_window_opens_another_alert(make_store, redis_url):
    store = await make_store(redis_url)
    ids = {
        await store.raise_alert(**raise_kwargs(**over))
        for over in ({}, {"user": "bob"}, {"type": "mass-delete"}, {"window": "2026-03-04"})
    }
    assert len(ids) == 4


async def test_two_instances_racing_on_one_redis_keep_one_alert_and_count_every_raise(make_store, redis_url, tmp_path):
    a = await make_store(redis_url, journal=tmp_path / "a.jsonl", writer="a")
    b = await make_store(redis_url, journal=tmp_path / "b.jsonl", writer="b")
    ids = await asyncio.gather(*[(a if i % 2 else b).raise_alert(**raise_kwargs(evidence={"i": i})) for i in range(20)])
    assert len(set(ids)) == 1
    assert (await a.get(ids[0])).count == 20
    assert len(await b.list()) == 1


async def test_after_resolve_the_next_occurrence_opens_a_new_alert(make_store, redis_url):
    store = await make_store(redis_url)
    first = await store.raise_alert(**raise_kwargs())
    await store.transition(first, actor="heidi", status="resolved", note="confirmed with the manager")
    second = await store.raise_alert(**raise_kwargs())
    assert second != first
    assert [a.status for a in await store.list()] == ["open", "resolved"]


async def test_invalid_transition_is_refused_and_changes_nothing(make_store, redis_url):
    store = await make_store(redis_url)
    alert_id = await store.raise_alert(**raise_kwargs())
    await store.transition(alert_id, actor="heidi", status="false_positive")
    with pytest.raises(InvalidTransition):
        await store.transition(alert_id, actor="heidi", status="acknowledged")
    alert = await store.get(alert_id)
    assert alert.status == "false_positive" and alert.rev == 2


async def test_every_action_is_in_the_history_with_its_actor(make_store, redis_url):
    store = await make_store(redis_url)
    alert_id = await store.raise_alert(**raise_kwargs())
    await store.transition(alert_id, actor="heidi", status="acknowledged")
    await store.transition(alert_id, actor="heidi", assignee="grace")
    await store.transition(alert_id, actor="grace", status="resolved", note="customer asked for it")
    alert = await store.get(alert_id)
    assert [(h.actor, h.action) for h in alert.history] == [
        ("threshold", "raised"),
        ("heidi", "acknowledge"),
        ("heidi", "assign"),
        ("heidi", "assign"),
        ("grace", "resolve"),
        ("grace", "note"),
    ]


async def test_list_filters_and_counts(make_store, redis_url):
    store = await make_store(redis_url)
    a = await store.raise_alert(**raise_kwargs(level="low"))
    await store.raise_alert(**raise_kwargs(user="bob", level="critical"))
    await store.transition(a, actor="heidi", status="acknowledged")
    assert [x.user for x in await store.list(level="critical")] == ["bob"]
    assert [x.id for x in await store.list(status={"acknowledged"})] == [a]
    assert [x.id for x in await store.list(user="alice", status="open")] == []
    counts = await store.counts()
    assert counts["by_status"]["open"] == 1 and counts["by_status"]["acknowledged"] == 1
    assert counts["open_by_level"] == {"low": 1, "medium": 0, "high": 0, "critical": 1}


async def test_alerts_come_back_after_flushall(make_store, redis_url):
    store = await make_store(redis_url)
    alert_id = await store.raise_alert(**raise_kwargs())
    await store.transition(alert_id, actor="heidi", status="acknowledged")
    client = aioredis.from_url(redis_url)
    await client.flushall()
    await client.aclose()
    assert await store.check_redis()
    other = await make_store(redis_url, writer="other", journal=store.journal.path.with_name("other.jsonl"))
    alert = await other.get(alert_id)  # another instance reads it from Redis
    assert alert is not None and alert.status == "acknowledged"


async def test_a_flushed_redis_does_not_cause_a_duplicate_on_the_next_raise(make_store, redis_url):
    store = await make_store(redis_url)
    alert_id = await store.raise_alert(**raise_kwargs())
    client = aioredis.from_url(redis_url)
    await client.flushall()
    await client.aclose()
    assert await store.raise_alert(**raise_kwargs()) == alert_id  # noticed before the periodic check
    assert (await store.get(alert_id)).count == 2


async def test_a_restarted_gateway_sees_its_alerts_and_keeps_deduplicating(make_store, redis_url, tmp_path):
    first = await make_store(None, journal=tmp_path / "solo.jsonl")  # journal only: nothing else to remember
    alert_id = await first.raise_alert(**raise_kwargs())
    await first.transition(alert_id, actor="heidi", note="watching")
    await first.close()
    restarted = await make_store(None, journal=tmp_path / "solo.jsonl")
    alert = await restarted.get(alert_id)
    assert alert.notes[0].text == "watching"
    assert await restarted.raise_alert(**raise_kwargs()) == alert_id


async def test_changes_by_another_process_on_the_same_journal_are_seen_without_redis(make_store, tmp_path):
    gateway = await make_store(None)
    cli = await make_store(None)  # same journal file, as the CLI on the gateway's host
    alert_id = await gateway.raise_alert(**raise_kwargs())
    await cli.transition(alert_id, actor="heidi", status="false_positive")
    assert (await gateway.get(alert_id)).status == "false_positive"


async def test_coalesced_repeats_are_counted_when_flushed(make_store, redis_url):
    store = await make_store(redis_url, repeat_min_interval=3600)
    alert_id = await store.raise_alert(**raise_kwargs())
    for _ in range(3):
        await store.raise_alert(**raise_kwargs())  # first repeat written, next ones only counted
    assert (await store.get(alert_id)).count == 2
    await store.flush_pending()
    assert (await store.get(alert_id)).count == 4


async def test_a_non_finite_score_does_not_lose_the_alert(make_store, redis_url):
    store = await make_store(redis_url)
    alert_id = await store.raise_alert(**raise_kwargs(score=float("nan")))
    assert (await store.get(alert_id)).score == 0.0
