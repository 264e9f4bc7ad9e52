"""gateway.scoring: the live scorer with a real model, a missing one, a refused one."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import numpy as np
import pytest

from detectors.features import FEATURE_NAMES, compute
from detectors.replay import Aggregator, read_audit_logs
from gateway.scoring import ScoringConfig, build_scorer
from tests.detectors.conftest import CollectingAlerts, at, record

NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)


def scorer_for(model_dir, alerts=None, **config):
    cfg = ScoringConfig(model_dir=str(model_dir) if model_dir else None, **config)
    return build_scorer(cfg, alerts=alerts or CollectingAlerts(), clock=lambda: NOW)


def enumeration(user="mallory", n=300):
    return [
        record(user, at(9, 9, i / 6), operation="customers.view", resource_id=str(5000 + i), ids=(5000 + i,))
        for i in range(n)
    ]


async def test_an_enumeration_raises_an_alert_with_feature_attributions(model_dir):
    alerts = CollectingAlerts()
    scorer = scorer_for(model_dir, alerts)
    await scorer.load()
    for r in enumeration():
        scorer.submit(None, r, None)
    await scorer.drain()
    assert len(alerts.alerts) == 1
    alert = alerts.alerts[0]
    assert (alert["user"], alert["type"], alert["window"], alert["source"], alert["rule"]) == (
        "mallory",
        "detector-anomaly",
        "2026-03-09",
        "detector",
        "detector",
    )
    assert alert["level"] in ("medium", "high", "critical")
    features = alert["evidence"]["features"]
    assert "sequence" in alert["summary"] or "next record id" in alert["summary"]
    driver = features.get("sequential_views") or features["longest_sequential_run"]
    assert {"value", "baseline", "contribution"} <= set(driver)
    assert driver["contribution"] > 0.2
    assert driver["value"] > 100 and driver["baseline"] < 5
    assert alert["evidence"]["recent_requests"][-1]["path"] == "/api/x"
    assert scorer.health()["scored"] == 1 and scorer.health()["model"] == "loaded"


async def test_the_same_day_alerts_once_unless_it_gets_worse(model_dir):
    alerts = CollectingAlerts()
    scorer = scorer_for(model_dir, alerts)
    await scorer.load()
    for r in enumeration():
        scorer.submit(None, r, None)
    await scorer.drain()
    scorer.submit(None, record("mallory", at(9, 11)), None)
    await scorer.drain()
    assert len(alerts.alerts) == 1


@pytest.mark.slow  # over a second
async def test_ordinary_activity_raises_nothing(model_dir):
    alerts = CollectingAlerts()
    scorer = scorer_for(model_dir, alerts)
    await scorer.load()
    for i in range(20):
        scorer.submit(None, record("quiet", at(9, 9, i * 10), returned=10, ids=range(i, i + 10)), None)
    await scorer.drain()
    assert alerts.alerts == [] and scorer.health()["scored"] == 1


async def test_no_model_is_health_missing_and_nothing_is_queued(tmp_path):
    scorer = scorer_for(tmp_path / "nothing-here")
    await scorer.start()
    scorer.submit(None, record("alice", at(9, 9)), None)
    await scorer.drain()
    await scorer.stop()
    health = scorer.health()
    assert health["model"] == "missing" and "crmgw detector train" in health["problem"]
    assert health["queued"] == 0 and health["errors"] == 0


async def test_no_model_dir_configured_is_missing():
    scorer = scorer_for(None)
    await scorer.load()
    assert scorer.health()["model"] == "missing"


async def test_a_tampered_model_is_refused_in_health(model_dir, tmp_path):
    shutil.copytree(model_dir, tmp_path / "m")
    (tmp_path / "m" / "model.skops").write_bytes(b"tampered")
    scorer = scorer_for(tmp_path / "m")
    await scorer.load()
    health = scorer.health()
    assert health["model"] == "refused" and "sha256" in health["problem"]


async def test_an_old_model_is_stale_but_still_scores(model_dir):
    scorer = scorer_for(model_dir, stale_after_days=1)
    scorer.clock = lambda: datetime(2099, 1, 1, tzinfo=UTC)
    await scorer.load()
    assert scorer.health()["model"] == "stale" and scorer.health()["card"]["threshold"] > 0


async def test_a_full_queue_drops_and_counts(model_dir):
    scorer = scorer_for(model_dir, max_queue=5)
    await scorer.load()
    for r in enumeration(n=8):
        scorer.submit(None, r, None)
    assert scorer.health()["dropped"] == 3 and scorer.health()["queued"] == 5


async def test_a_failing_alert_store_is_counted_not_raised(model_dir):
    scorer = scorer_for(model_dir, CollectingAlerts(fail=True))
    await scorer.load()
    for r in enumeration():
        scorer.submit(None, r, None)
    await scorer.drain()
    assert scorer.health()["errors"] == 1


@pytest.mark.slow  # over a second
async def test_a_broken_record_is_counted_and_the_rest_scored(model_dir):
    scorer = scorer_for(model_dir)
    await scorer.load()
    scorer.submit(None, {"user": "x", "time": "not a time"}, None)
    scorer.submit(None, record("alice", at(9, 9)), None)
    await scorer.drain()
    assert scorer.health()["errors"] == 1 and scorer.health()["scored"] == 1


@pytest.mark.slow
async def test_live_features_equal_replay_of_the_same_records(model_dir, world_b):
    files = sorted(world_b.glob("audit-*.log"))[8:10]
    scorer = scorer_for(model_dir, batch_interval=3600)
    await scorer.load()
    records = list(read_audit_logs(files))
    for i in range(0, len(records), 97):  # several batches, as the background task would see
        for r in records[i : i + 97]:
            scorer.submit(None, r, None)
        await scorer.drain()
    replayed = Aggregator()
    replayed.load_state(scorer.loaded.history)  # the live path starts from the model's history too
    for r in records:
        replayed.add(r)
    assert replayed.windows
    for user, window in replayed.windows.items():
        expected = compute(window, replayed.history[user], replayed.exported_by_day.get(user))
        got = scorer.views[user].features()
        assert np.allclose(got, expected), (
            user,
            [n for n, a, b in zip(FEATURE_NAMES, got, expected) if not np.isclose(a, b)],
        )


def test_config_refuses_unknown_keys():
    with pytest.raises(ValueError):
        ScoringConfig(model_dir="m", batch_size=3)
