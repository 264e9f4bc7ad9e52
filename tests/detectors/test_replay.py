"""The aggregator: what replayed audit records add to user-day windows and user history."""

from __future__ import annotations

import orjson

from detectors.replay import Aggregator, read_audit_logs
from tests.detectors.conftest import at, record


def test_a_new_day_closes_the_previous_one_into_history():
    agg = Aggregator()
    agg.add(record("alice", at(2, 9), returned=5, ids=(1, 2, 3, 4, 5)))
    agg.add(record("alice", at(3, 9), returned=2, ids=(1, 2)))
    assert agg.history["alice"].days["2026-03-02"]["records_read"] == 5
    assert agg.history["alice"].days["2026-03-02"]["distinct_records"] == 5
    assert agg.windows["alice"].day == "2026-03-03"


def test_an_excluded_day_never_enters_history():
    agg = Aggregator(exclude={("alice", "2026-03-02")})
    agg.add(record("alice", at(2, 9), country="RU"))
    agg.add(record("alice", at(3, 9)))
    assert "2026-03-02" not in agg.history["alice"].days
    assert "RU" not in agg.history["alice"].countries


def test_a_late_record_of_a_closed_day_is_not_counted():
    agg = Aggregator()
    agg.add(record("alice", at(3, 9)))
    agg.add(record("alice", at(2, 9)))
    assert agg.windows["alice"].counts["requests"] == 1


def test_the_listener_sees_a_snapshot_per_slot_and_one_at_close():
    seen = []
    agg = Aggregator(listener=lambda u, w, h, final: seen.append((w.counts["requests"], final)))
    for minute in (0, 5, 20, 50):  # slots 09:00, 09:15, 09:45
        agg.add(record("alice", at(2, 9, minute)))
    agg.close_all()
    assert seen == [(2, False), (3, False), (4, True)]


def test_state_round_trips_history():
    agg = Aggregator()
    agg.add(record("alice", at(2, 9), returned=3, ids=(1, 2, 3)))
    agg.close_all()
    again = Aggregator()
    again.load_state(orjson.loads(orjson.dumps(agg.state())))
    assert again.history["alice"].days == agg.history["alice"].days
    assert again.history["alice"].networks == agg.history["alice"].networks


def test_audit_files_are_merged_in_time_order(tmp_path):
    a = [record("alice", at(2, h)) for h in (1, 5)]
    b = [record("bob", at(2, h)) for h in (3, 7)]
    (tmp_path / "audit.log.1").write_bytes(b"\n".join(orjson.dumps(r) for r in a) + b"\n")
    (tmp_path / "audit.log").write_bytes(b"\n".join(orjson.dumps(r) for r in b) + b"\ngarbage\n")
    users = [r["user"] for r in read_audit_logs([tmp_path])]
    assert users == ["alice", "bob", "alice", "bob"]
