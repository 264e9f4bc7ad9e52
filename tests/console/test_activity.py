"""Per-day activity, usual range and hours, shadow counts and the "why" of an alert."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from gateway.console import activity

PARIS = ZoneInfo("Europe/Paris")


def record(time, **over):
    base = {
        "time": time,
        "user": "alice",
        "operation": "customers.export",
        "effect": "allow",
        "status": 200,
        "records_returned": 100,
        "timezone": "Europe/Paris",
        "country": "FR",
    }
    base.update(over)
    return base


def test_daily_totals_count_like_the_signals_stage_in_the_analysts_days():
    records = [
        record("2026-03-02T22:30:00+00:00"),  # 23:30 in Paris: still 2 March
        record("2026-03-02T23:30:00+00:00"),  # 00:30 in Paris: 3 March
        record("2026-03-03T08:00:00+00:00", effect="deny", status=403),
    ]  # denied: nothing exported
    totals = activity.daily_totals(records, "records_exported", PARIS)
    assert totals == {date(2026, 3, 2): 100, date(2026, 3, 3): 100}


def test_the_series_covers_every_day_up_to_the_end():
    series = activity.day_series({date(2026, 3, 3): 5}, date(2026, 3, 3), 3)
    assert series == [(date(2026, 3, 1), 0), (date(2026, 3, 2), 0), (date(2026, 3, 3), 5)]


def test_the_usual_range_ignores_the_alert_day():
    series = [(date(2026, 3, d), v) for d, v in zip(range(1, 12), [10] * 10 + [900])]
    assert activity.usual_range(series) == (10, 10)
    assert activity.usual_range(series[-3:]) is None  # too little history


def test_the_metric_is_the_alerts_counter_or_requests():
    assert activity.metric_of({"count": "records_exported"}) == "records_exported"
    assert activity.metric_of({"count": "sequential_ids"}) == "requests"


def test_usual_hours_are_ranges_of_busy_hours():
    hours = [0] * 24
    for h in (8, 9, 10, 14, 15):
        hours[h] = 10
    hours[3] = 1  # one night request among 51 is not "usual"
    assert activity.usual_hours(hours) == "08:00-11:00, 14:00-16:00"


def test_shadow_counts():
    records = [
        {"shadow": [{"rule": "r1", "would": "deny"}]},
        {"shadow": [{"rule": "r1", "would": "deny"}, {"rule": "r2", "would": "allow"}]},
    ]
    counts = activity.shadow_counts(records)
    assert counts["r1"]["deny"] == 2 and counts["r2"]["allow"] == 1


def test_why_rows_for_a_threshold_and_for_detector_features():
    rows = activity.why_rows(
        {
            "count": "records_exported",
            "timespan": "1h",
            "value": 900,
            "threshold": 600,
            "baseline": 200,
            "before": 300,
            "features": [{"name": "export_ratio", "value": 9.1, "baseline": 1.2, "z": 6.3}],
        }
    )
    assert rows[0] == {
        "name": "records_exported in 1h",
        "observed": 900,
        "threshold": 600,
        "baseline": 200,
        "before": 300,
    }
    assert rows[1]["name"] == "export_ratio" and rows[1]["baseline"] == 1.2 and rows[1]["before"] == 6.3
    assert activity.why_rows({"features": {"night_share": 0.8}})[0]["observed"] == 0.8


def test_why_rows_of_a_detector_feature_carry_the_own_and_peer_usual():
    rows = activity.why_rows(
        {
            "features": {
                "exports": {"value": 9, "own": {"median": 1, "max": 2, "days": 30}, "peer": {"group": "r", "usual": 3}},
                "views": {"value": 5, "own": None, "peer": {"group": "r", "median": 4}},
                "plain": {"value": 1, "baseline": 0.5},
            },
            "drivers": ["exports 9 (own usual 1)", 7, None],
        }
    )
    assert rows[0]["own"] == {"usual": 1, "max": 2, "days": 30} and rows[0]["peer"] == {"usual": 3, "group": "r"}
    assert rows[1]["own"] is None and rows[1]["peer"] == {"usual": 4, "group": "r"}
    assert "own" not in rows[2] and "peer" not in rows[2]  # older evidence: the baseline column only
    assert activity.why_drivers({"drivers": ["a", 7, None]}) == ["a"] and activity.why_drivers({"drivers": "a"}) == []
