"""Training: splits, calibration to the budget, labels and verdicts."""

from __future__ import annotations

from datetime import date

import pytest

from detectors import store
from detectors.train import TrainingError, split_days, train


def test_calibration_respects_the_budget_on_the_calibration_split(model_dir):
    card = store.load(model_dir).card
    assert card.calibration_false_alerts_per_1000 <= card.budget
    assert card.rows["calibration_user_days"] > 100


def test_held_out_days_come_after_training_and_calibration():
    train_days, cal_days, hold_from = split_days(date(2026, 1, 1), date(2026, 1, 30), 0.2, 0.2)
    assert hold_from == "2026-01-25"
    assert max(train_days + cal_days) < hold_from
    assert not set(train_days) & set(cal_days)
    assert len(cal_days) == 24 // 5


def test_too_few_days_are_refused():
    with pytest.raises(TrainingError, match="too few"):
        split_days(date(2026, 1, 1), date(2026, 1, 5), 0.2, 0.2)


def test_a_bad_verdicts_line_is_reported_with_its_line_number(world_a, tmp_path):
    bad = tmp_path / "verdicts.jsonl"
    bad.write_text(
        '{"user": "u0001", "day": "2026-01-10", "verdict": "false_positive"}\n{"user": "u0001", "verdict": "maybe"}\n'
    )
    with pytest.raises(TrainingError, match=r"verdicts.jsonl:2: verdict"):
        train([world_a], tmp_path / "m", verdicts_path=bad)


def test_a_false_positive_verdict_becomes_an_allowance(model_dir, verdicts):
    loaded = store.load(model_dir)
    user, _ = verdicts["false_positive"]
    assert "records_deleted" in loaded.model.allowances[user]
    assert loaded.card.verdicts == {"false_positive": 1, "confirmed": 1}


def test_confirmed_days_stay_out_of_the_users_history(model_dir, verdicts):
    loaded = store.load(model_dir)
    user, day = verdicts["confirmed"]
    assert [user, day] in loaded.history["excluded"]
    assert day not in loaded.history["history"][user]["days"]
