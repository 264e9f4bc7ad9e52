"""Records never touched before against the user's typical day (a stolen session that keeps its
owner's hours and volume), quiet in the first week of a new role or team."""

from __future__ import annotations

from detectors.features import FEATURE_NAMES, compute
from detectors.replay import Aggregator
from tests.detectors.conftest import at, record


def day_of_work(user: str, day: int, ids=range(40), ip="198.51.100.7", roles=("sales_rep",)) -> list:
    """Ten views of the user's own book, five minutes apart."""
    return [
        record(user, at(day, 9, 5 * i), operation="customers.view", ids=(ids[i * 3 % len(ids)],), ip=ip, roles=roles)
        for i in range(10)
    ]


def features(records, user="alice") -> dict[str, float]:
    agg = Aggregator()
    for r in records:
        agg.add(r)
    w = agg.windows[user]
    return dict(zip(FEATURE_NAMES, compute(w, agg.history[user], agg.exported_by_day.get(user))))


SETTLED = [r for d in range(2, 13) for r in day_of_work("alice", d)]  # 11 days on the same book


def test_other_peoples_records_at_the_usual_pace_stand_out_against_the_users_typical_day():
    usual = features(SETTLED + day_of_work("alice", 13))
    stolen = features(SETTLED + day_of_work("alice", 13, ids=range(5000, 5040)))
    assert usual["unfamiliar_vs_user_median"] <= 0.0
    assert stolen["unfamiliar_vs_user_median"] > 2.0  # ten new records against none on a typical day
    assert stolen["requests"] == usual["requests"]


def test_a_new_roles_first_week_brings_new_records_that_are_no_signal():
    manager = ("sales_manager", "sales_rep")
    first_week = [r for d in (13, 14) for r in day_of_work("alice", d, ids=range(5000, 5040), roles=manager)]
    assert features(SETTLED + first_week)["unfamiliar_vs_user_median"] == 0.0
    later = [r for d in range(13, 21) for r in day_of_work("alice", d, ids=range(5000, 5040), roles=manager)]
    thief = day_of_work("alice", 21, ids=range(9000, 9040), roles=manager)
    assert features(SETTLED + later + thief)["unfamiliar_vs_user_median"] > 2.0  # settled in again


def test_a_reorganised_teams_new_records_are_no_signal_in_its_first_week():
    moved = day_of_work("alice", 13, ids=range(5000, 5040)) + day_of_work("alice", 14, ids=range(6000, 6040))
    for r in moved:
        r["team"] = "paris-2-reorg"
    assert features(SETTLED + moved)["unfamiliar_vs_user_median"] == 0.0
