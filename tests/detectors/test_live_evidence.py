"""Issue 15, point 5: a detector alert names the features that drove it against the user's own
baseline (their closed days) and the peer baseline (the model's group for their role)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.scoring import ScoringConfig, build_scorer
from tests.detectors.conftest import CollectingAlerts, at, record

pytestmark = pytest.mark.slow  # a model load (skops) and a replay: about a second each

NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)


def enumeration(user: str, day: int) -> list[dict]:
    return [
        record(user, at(day, 9, i / 6), operation="customers.view", resource_id=str(5000 + i), ids=(5000 + i,))
        for i in range(300)
    ]


def ordinary(user: str, day: int) -> list[dict]:
    return [record(user, at(day, 9, i * 10), returned=10, ids=range(i, i + 10)) for i in range(12)]


async def alert_for(model_dir, records):
    alerts = CollectingAlerts()
    scorer = build_scorer(ScoringConfig(model_dir=str(model_dir), watch_interval=0), alerts=alerts, clock=lambda: NOW)
    await scorer.load()
    for r in records:
        scorer.submit(None, r, None)
        if len(scorer.queue) >= 100:
            await scorer.drain()
    await scorer.drain()
    assert {a["window"] for a in alerts.alerts} == {"2026-03-09"}
    return alerts.alerts[-1]  # the day's alert as it grew


async def test_the_drivers_are_set_against_the_users_own_days_and_their_peers(model_dir):
    past = [r for day in range(2, 7) for r in ordinary("dave", day)]
    alert = await alert_for(model_dir, past + enumeration("dave", 9))
    evidence = alert["evidence"]
    driver = evidence["features"].get("sequential_views") or evidence["features"]["longest_sequential_run"]
    assert driver["value"] > 100 and driver["contribution"] > 0
    assert driver["own"] == {"usual": 0.0, "max": 0.0, "days": 5}
    assert driver["peer"]["group"] == evidence["baseline_group"] and driver["peer"]["usual"] < 5
    assert evidence["own_history_days"] == 5
    assert "own usual 0, max 0 over 5 days" in alert["summary"]
    assert any("own usual" in d and "usual" in d.split(";")[1] for d in evidence["drivers"])


async def test_a_user_without_history_is_judged_by_the_peers_and_says_so(model_dir):
    alert = await alert_for(model_dir, enumeration("newcomer", 9))
    features = alert["evidence"]["features"]
    assert all(f["own"] is None for f in features.values())
    assert "no own history" in alert["summary"]
