"""Training: splits, calibration to the budget, labels and verdicts."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from detectors import store
from detectors.calendar import day_type
from detectors.train import TrainingError, calendar_weights, calibrate_weighted, split_days, train


def test_calibration_respects_the_budget_on_the_calibration_split(model_dir):
    card = store.load(model_dir).card
    assert card.calibration_false_alerts_per_1000 <= card.budget
    assert card.rows["calibration_user_days"] > 100


def test_held_out_days_come_after_training_and_calibration():
    train_days, cal_days, hold_from = split_days(date(2026, 1, 1), date(2026, 1, 30), 0.2, 0.2)
    assert hold_from == "2026-01-25"
    assert max(train_days + cal_days) < hold_from
    assert not set(train_days) & set(cal_days)
    assert 24 // 5 <= len(cal_days) <= 24 // 5 + 3


def test_calibration_days_cover_every_day_type_of_the_calendar():
    # January-February 2026: weekdays, weekends, two month-ends, two month-starts
    _, cal_days, hold_from = split_days(date(2026, 1, 5), date(2026, 3, 5), 0.2, 0.2)
    types = {day_type(d) for d in cal_days}
    assert {"weekday", "weekend", "month_end", "month_start"} <= types
    assert max(cal_days) < hold_from


def test_calibration_weights_give_each_day_type_its_share_of_the_target_calendar():
    cal = ["2026-01-07", "2026-01-08", "2026-01-09", "2026-01-29"]  # 3 weekdays, 1 month-end
    target = ["2026-02-24", "2026-02-25", "2026-02-26", "2026-02-27"]  # 1 weekday, 3 month-end
    w = calendar_weights(cal, target)
    assert w["month_end"] == pytest.approx(3.0) and w["weekday"] == pytest.approx(1 / 3)


def test_weighted_calibration_keeps_the_weighted_rate_within_budget():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=4000)
    weights = np.where(np.arange(4000) % 4 == 0, 3.0, 1.0)
    threshold, realised = calibrate_weighted(scores, weights, 5.0)
    rate = weights[scores > threshold].sum() * 1000 / weights.sum()
    assert rate == pytest.approx(realised) and realised <= 5.0
    lower = np.sort(scores)[np.searchsorted(np.sort(scores), threshold) - 1]
    assert weights[scores > lower].sum() * 1000 / weights.sum() > 5.0  # the lowest such threshold


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
