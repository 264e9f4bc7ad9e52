"""Searching the audit log: rotated files, newest first, filters, byte budget, damaged lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from gateway.audit.search import AuditQuery, Budget, audit_files, find_decision, lines_backwards, search

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def line(i: int, **over) -> bytes:
    record = {
        "time": (T0 + timedelta(minutes=i)).isoformat(),
        "decision_id": f"d{i}",
        "user": "alice",
        "operation": "customers.view",
        "effect": "allow",
        "reason": "allowed",
        "rules": ["r-allow"],
        "reasons": ["role-ok"],
        "shadow": [],
    }
    record.update(over)
    return orjson.dumps(record) + b"\n"


@pytest.fixture
def log(tmp_path):
    """Records 0..29: 0-9 in audit.log.2, 10-19 in audit.log.1, 20-29 in audit.log (newest)."""
    path = tmp_path / "audit.log"
    for name, rng in ((f"{path.name}.2", range(10)), (f"{path.name}.1", range(10, 20)), (path.name, range(20, 30))):
        (tmp_path / name).write_bytes(
            b"".join(
                line(i, user="bob" if i % 3 == 0 else "alice", effect="deny" if i % 5 == 0 else "allow") for i in rng
            )
        )
    return path


def ids(result):
    return [int(r["decision_id"][1:]) for r in result.records]


def test_files_are_found_newest_first(log):
    assert [f.name for f in audit_files(log)] == ["audit.log", "audit.log.1", "audit.log.2"]


def test_records_come_newest_first_across_rotated_files(log):
    assert ids(search(log, limit=100)) == list(range(29, -1, -1))


def test_filters_combine(log):
    assert ids(search(log, AuditQuery(user="bob", effect="deny"))) == [15, 0]


def test_operation_globs_and_rules_match_shadow_rules_too(log, tmp_path):
    log.write_bytes(line(40, operation="deals.list", shadow=[{"rule": "s1", "would": "deny"}]) + log.read_bytes())
    assert ids(search(log, AuditQuery(operation="deals.*"))) == [40]
    assert ids(search(log, AuditQuery(rule="s1"))) == [40]
    assert ids(search(log, AuditQuery(shadow=True))) == [40]


def test_a_time_range_stops_reading_once_past_its_start(log):
    result = search(log, AuditQuery(since=T0 + timedelta(minutes=25), until=T0 + timedelta(minutes=27)))
    assert ids(result) == [27, 26, 25]
    assert result.files and not result.truncated


def test_the_byte_budget_bounds_the_search_and_says_so(log):
    result = search(log, limit=100, max_bytes=len(line(29)) * 3)
    assert 0 < len(result.records) < 30
    assert result.truncated


def test_damaged_and_partial_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "audit.log"
    path.write_bytes(line(1) + b"{not json\n" + line(2) + b'{"time": "2026-03')
    result = search(path)
    assert ids(result) == [2, 1]
    assert result.bad_lines == 2


def test_lines_longer_than_a_block_are_whole(tmp_path):
    path = tmp_path / "audit.log"
    path.write_bytes(line(1, user_agent="x" * 200_000) + line(2))
    assert [len(x) > 200_000 for x in lines_backwards(path, Budget(10**9))] == [False, True]


def test_find_decision(log):
    assert find_decision(log, "d13")["decision_id"] == "d13"
    assert find_decision(log, "d99") is None


def test_a_missing_log_finds_nothing(tmp_path):
    assert search(tmp_path / "none.log").records == []
