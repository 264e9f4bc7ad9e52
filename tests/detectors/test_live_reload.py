"""Issue 15, point 3: a new model is verified aside and swapped in without a restart (card.json is
watched); a refused one leaves the model in use serving, and health says which model and why."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime

import pytest

from gateway.scoring import ScoringConfig, build_scorer
from tests.detectors.conftest import CollectingAlerts, at, record
from tests.detectors.test_store import rewrite_threshold

pytestmark = pytest.mark.slow  # a model load (skops) and a replay: about a second each

NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)


def replace_model(src, dest) -> None:
    """As a deployment would ship a new model: the files, the card last."""
    for name in ("model.skops", "history.json", "card.json"):
        shutil.copy(src / name, dest / name)


async def watching(folder):
    config = ScoringConfig(model_dir=str(folder), batch_interval=3600, watch_interval=0.01)
    scorer = build_scorer(config, alerts=CollectingAlerts(), clock=lambda: NOW)
    await scorer.load()
    return scorer


async def next_tick(scorer):
    time.sleep(0.02)  # past watch_interval
    await scorer.tick()


async def test_a_new_model_in_the_directory_is_swapped_in_without_a_restart(model_dir, held_out_model, tmp_path):
    shutil.copytree(model_dir, tmp_path / "m")
    scorer = await watching(tmp_path / "m")
    old = scorer.health()["card"]["sha256"]
    replace_model(held_out_model, tmp_path / "m")
    await next_tick(scorer)
    health = scorer.health()
    assert health["card"]["sha256"] != old and health["reloads"] == 1
    assert health["model"] == "loaded" and health["reload_error"] is None
    scorer.submit(None, record("erin", at(9, 9)), None)
    await scorer.drain()
    assert scorer.health()["scored"] == 1


async def test_a_refused_model_leaves_the_model_in_use_and_says_why(model_dir, tmp_path):
    shutil.copytree(model_dir, tmp_path / "m")
    scorer = await watching(tmp_path / "m")
    old = scorer.health()["card"]["sha256"]
    rewrite_threshold(tmp_path / "m", 1e9)
    await next_tick(scorer)
    health = scorer.health()
    assert health["card"]["sha256"] == old and health["model"] == "loaded"
    assert "signature does not verify" in health["reload_error"]
    assert "detector-model-reload-failed" in health["problems"]


async def test_an_unchanged_card_is_not_reloaded(model_dir, tmp_path):
    shutil.copytree(model_dir, tmp_path / "m")
    scorer = await watching(tmp_path / "m")
    await next_tick(scorer)
    assert scorer.health()["reloads"] == 0
