"""Redis down or restarted empty, and an unwritable journal: no alert is lost, and none silently."""

from __future__ import annotations

import asyncio

import pytest

from gateway.alerts.store import JournalUnavailable
from gateway.alerts.verdicts import read_verdicts
from tests.alerts.conftest import raise_kwargs


@pytest.mark.slow
async def test_redis_down_marks_degraded_and_raise_is_still_durable(make_store, redis_proc):
    store = await make_store(redis_proc.url)
    assert store.health()["status"] == "ok"
    redis_proc.stop()
    alert_id = await store.raise_alert(**raise_kwargs())
    assert alert_id is not None
    health = store.health()
    assert health["status"] == "degraded" and "alerts-redis-unavailable" in health["degraded"]
    assert await store.raise_alert(**raise_kwargs()) == alert_id  # still de-duplicated, locally
    assert [a.id for a in await store.list()] == [alert_id]
    assert alert_id in store.journal.path.read_text()


@pytest.mark.slow
async def test_recovery_replays_what_was_raised_during_the_outage(make_store, redis_proc, tmp_path):
    store = await make_store(redis_proc.url)
    before = await store.raise_alert(**raise_kwargs(user="bob"))
    redis_proc.stop()
    during = await store.raise_alert(**raise_kwargs())
    await store.transition(during, actor="heidi", status="acknowledged")
    assert not await store.check_redis()
    redis_proc.start()  # restarted empty: nothing from before the outage either
    assert await store.check_redis()
    assert store.health()["status"] == "ok"
    other = await make_store(redis_proc.url, writer="other", journal=tmp_path / "other.jsonl")
    assert {a.id for a in await other.list()} == {before, during}
    assert (await other.get(during)).status == "acknowledged"


@pytest.mark.slow
async def test_actions_while_redis_is_down_reach_redis_after_recovery(make_store, redis_proc, tmp_path):
    store = await make_store(redis_proc.url)
    alert_id = await store.raise_alert(**raise_kwargs())
    redis_proc.stop()
    await store.check_redis()
    await store.transition(alert_id, actor="heidi", status="false_positive", note="backup job")
    redis_proc.start()
    await store.check_redis()
    other = await make_store(redis_proc.url, writer="other", journal=tmp_path / "other.jsonl")
    assert (await other.get(alert_id)).status == "false_positive"


def break_journal(store, tmp_path) -> None:
    """The journal's folder turns into a file: every append fails (as on a full or read-only disk)."""
    store.journal.close()
    (tmp_path / "gone").write_text("a file where the journal's folder should be")
    store.journal.path = tmp_path / "gone" / "alerts.jsonl"


async def test_unwritable_journal_keeps_the_alert_on_stderr_and_counts_it(make_store, redis_url, tmp_path, capfd):
    store = await make_store(redis_url)
    break_journal(store, tmp_path)
    alert_id = await store.raise_alert(**raise_kwargs(summary="kept on stderr"))
    assert alert_id is not None and (await store.get(alert_id)) is not None  # still in Redis
    health = store.health()
    assert health["unjournalled_alerts"] == 1 and "alerts-journal-unwritable" in health["degraded"]
    err = capfd.readouterr().err
    assert "ALERT-UNJOURNALLED" in err and "kept on stderr" in err


async def test_unwritable_journal_refuses_analyst_actions(make_store, redis_url, tmp_path):
    store = await make_store(redis_url)
    alert_id = await store.raise_alert(**raise_kwargs())
    break_journal(store, tmp_path)
    with pytest.raises(JournalUnavailable):
        await store.transition(alert_id, actor="heidi", status="resolved")
    assert (await store.get(alert_id)).status == "open"


@pytest.mark.slow
async def test_verdicts_survive_in_the_journal_alone(make_store, redis_proc):
    store = await make_store(redis_proc.url)
    alert_id = await store.raise_alert(**raise_kwargs())
    await store.transition(alert_id, actor="heidi", status="false_positive")
    redis_proc.stop()
    [verdict] = read_verdicts(store.journal.path)
    assert verdict["verdict"] == "false_positive" and verdict["alert_id"] == alert_id


@pytest.mark.slow
async def test_the_background_check_recovers_by_itself(make_store, redis_proc, tmp_path):
    store = await make_store(redis_proc.url, check_interval=0.02)
    store._checker.start()  # what start(background=True) runs
    redis_proc.stop()
    alert_id = await store.raise_alert(**raise_kwargs())
    redis_proc.start()
    for _ in range(500):  # waits for an event (the replay), not for a duration
        if store.redis_up:
            break
        await asyncio.sleep(0.02)
    other = await make_store(redis_proc.url, writer="other", journal=tmp_path / "other.jsonl")
    assert store.health()["status"] == "ok" and (await other.get(alert_id)) is not None
