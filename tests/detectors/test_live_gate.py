"""Issue 15, point 4: before serving, a model is scored on this gateway's own recent audit lines;
one that would alert far above its budget here (made for another CRM) is refused, or flagged."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from gateway.scoring import ScoringConfig, build_scorer
from tests.detectors.conftest import CollectingAlerts, at, record

pytestmark = pytest.mark.slow  # a model load (skops) and a replay: about a second each

NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)
USERS = [f"user{i:02d}" for i in range(25)]


def enumerations(user: str, day: int) -> list[dict]:
    return [
        record(user, at(day, 9, i / 4), operation="customers.view", resource_id=str(7000 + i), ids=(7000 + i,))
        for i in range(120)
    ]


def ordinary(user: str, day: int) -> list[dict]:
    return [record(user, at(day, 9, i * 10), returned=10, ids=range(i, i + 10)) for i in range(12)]


def write_audit(path, make) -> None:
    lines = sorted((r for day in range(4, 9) for u in USERS for r in make(u, day)), key=lambda r: r["time"])
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lines))


async def scorer_over(model_dir, tmp_path, make, **config):
    write_audit(tmp_path / "audit.log", make)
    cfg = ScoringConfig(model_dir=str(model_dir), watch_interval=0, check_min_user_days=50, **config)
    scorer = build_scorer(cfg, alerts=CollectingAlerts(), clock=lambda: NOW, audit_path=tmp_path / "audit.log")
    await scorer.load()
    return scorer


async def test_a_model_that_would_flood_this_deployment_is_refused(model_dir, tmp_path):
    scorer = await scorer_over(model_dir, tmp_path, enumerations)
    health = scorer.health()
    assert health["model"] == "refused" and "alerts per 1,000 user-days" in health["problem"]
    assert scorer.loaded is None


async def test_flag_mode_serves_it_and_says_so_in_health(model_dir, tmp_path):
    scorer = await scorer_over(model_dir, tmp_path, enumerations, over_budget="flag")
    health = scorer.health()
    assert health["model"] == "loaded" and "detector-model-over-budget" in health["problems"]
    check = health["local_traffic"]
    assert check["status"] == "over-budget" and check["user_days"] == 125 and check["per_1000"] > check["limit"]


async def test_a_model_quiet_on_this_deployment_serves(model_dir, tmp_path):
    scorer = await scorer_over(model_dir, tmp_path, ordinary)
    health = scorer.health()
    assert health["model"] == "loaded" and health["local_traffic"]["status"] == "ok"
    assert "detector-model-over-budget" not in health["problems"]


async def test_too_little_local_traffic_is_unchecked(model_dir, tmp_path):
    scorer = await scorer_over(model_dir, tmp_path, lambda u, d: ordinary(u, d) if u == "user00" else [])
    assert scorer.health()["local_traffic"]["status"] == "unchecked"
    assert scorer.health()["model"] == "loaded"


async def test_the_demo_key_is_flagged_in_health(model_dir, tmp_path):
    scorer = await scorer_over(model_dir, tmp_path, lambda u, d: [])
    assert "detector-model-demo-key" in scorer.health()["problems"]
    assert scorer.health()["card"]["signed_by"].startswith("the public demo key")


async def test_a_gateway_run_with_its_own_key_refuses_the_demo_model(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CRMGW_MODEL_KEY", "deployment-key-" + "x" * 32)
    scorer = await scorer_over(model_dir, tmp_path, lambda u, d: [])
    health = scorer.health()
    assert health["model"] == "refused" and "signed with the public demo key" in health["problem"]
    assert scorer.loaded is None


def test_the_model_key_variable_is_a_secret_the_settings_name(tmp_path):
    from gateway.envconfig import secret_names
    from tests.conftest import RULES
    from tests.integration.conftest import gateway_settings

    assert "CRMGW_MODEL_KEY" in secret_names(gateway_settings("http://127.0.0.1:1", tmp_path, RULES))
