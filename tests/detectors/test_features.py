"""Feature values on hand-built audit records."""

from __future__ import annotations

import math

import pytest

from detectors.features import FEATURE_NAMES, compute, echo_days, is_month_end, natural
from detectors.replay import Aggregator
from tests.detectors.conftest import at, record


def features(records, user="alice"):
    agg = Aggregator()
    for r in records:
        agg.add(r)
    w = agg.windows[user]
    return dict(zip(FEATURE_NAMES, compute(w, agg.history[user], agg.exported_by_day.get(user))))


def history_days(n=5, **kw):
    """n ordinary days before 2026-03-09 (office network, France, one list of 10 records)."""
    return [record("alice", at(2 + d, 9), returned=10, ids=range(10), **kw) for d in range(n)]


def test_feature_order_is_fixed_and_names_are_unique():
    assert FEATURE_NAMES[:3] == ("requests", "records_read", "records_exported")
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) == 35


def test_volumes_are_log_scaled():
    f = features([record("alice", at(9, 9), operation="customers.export", returned=999)])
    assert f["records_exported"] == pytest.approx(math.log1p(999))
    assert natural("records_exported", f["records_exported"]) == 999


def test_walking_through_consecutive_ids_counts_as_sequential():
    views = [record("alice", at(9, 9, i), operation="customers.view", resource_id=str(100 + 2 * i)) for i in range(10)]
    f = features(views)
    assert natural("sequential_views", f["sequential_views"]) == 9
    assert natural("longest_sequential_run", f["longest_sequential_run"]) == 10


def test_random_ids_are_not_sequential():
    views = [record("alice", at(9, 9, i), operation="customers.view", resource_id=str(i * 97)) for i in range(1, 6)]
    assert features(views)["sequential_views"] == 0


def test_a_country_never_seen_before_is_new_and_counted_off_hours():
    night = record("alice", at(9, 1), country="BR", ip="177.1.2.3")  # 02:00 in Paris
    f = features(history_days() + [night])
    assert f["new_countries"] == 1
    assert f["new_networks"] == 1
    assert natural("new_country_off_hours", f["new_country_off_hours"]) == 1
    assert natural("night_requests", f["night_requests"]) == 1


def test_nothing_is_new_on_a_users_first_day():
    f = features([record("alice", at(9, 1), country="BR")])
    assert f["new_countries"] == f["new_networks"] == f["new_user_agents"] == 0


def test_paris_then_china_within_an_hour_is_impossible_travel():
    f = features(
        history_days() + [record("alice", at(9, 9)), record("alice", at(9, 9, 40), country="CN", ip="116.1.1.1")]
    )
    assert f["impossible_travel"] == 1
    assert natural("max_travel_speed", f["max_travel_speed"]) > 5000


def test_relative_features_compare_with_the_users_own_history():
    f = features(history_days() + [record("alice", at(9, 9), returned=100, ids=range(100))])
    assert natural("records_read_vs_user_max", f["records_read_vs_user_max"]) == pytest.approx(101 / 11, rel=0.01)


def test_relative_features_are_neutral_without_history():
    f = features([record("alice", at(9, 9), returned=100)])
    assert f["records_read_vs_user_max"] == 0.0


def test_the_busiest_hour_is_kept():
    recs = [record("alice", at(9, 9, m), operation="customers.delete", targets=10, returned=0) for m in (0, 10)] + [
        record("alice", at(9, 14), operation="customers.delete", targets=1)
    ]
    f = features(recs)
    assert natural("max_hour_records_deleted", f["max_hour_records_deleted"]) == 20
    assert natural("records_deleted", f["records_deleted"]) == 21


def test_exports_on_several_days_add_up_over_the_week():
    recs = [record("alice", at(2 + d, 9), operation="customers.export", returned=100) for d in range(4)]
    f = features(recs)
    assert f["export_days_7d"] == 4
    assert natural("exported_7d", f["exported_7d"]) == 400


def test_month_end_exports_do_not_count_in_the_week():
    assert is_month_end("2026-02-26") and not is_month_end("2026-03-02")
    recs = [
        record("alice", at(2, 9).replace(month=2, day=26), operation="customers.export", returned=500),
        record("alice", at(2, 9), operation="customers.export", returned=10),
    ]
    f = features(recs)
    assert f["export_days_7d"] == 1
    assert natural("exported_7d", f["exported_7d"]) == 10


def test_echo_days_are_the_six_days_after_an_incident_day():
    days = echo_days({("alice", "2026-03-02")})
    assert ("alice", "2026-03-03") in days and ("alice", "2026-03-08") in days
    assert ("alice", "2026-03-09") not in days and ("alice", "2026-03-02") not in days
