"""The journal: appended lines are read back (also by another reader), torn lines never swallow the next."""

from __future__ import annotations

from gateway.alerts.journal import Journal, latest_alerts


def put(event, alert_id, rev):
    return {"op": "put", "event": event, "writer": "w", "alert": {"id": alert_id, "rev": rev}}


def test_appended_records_are_read_by_a_second_reader_from_its_tail(tmp_path):
    writer, reader = Journal(tmp_path / "j.jsonl"), Journal(tmp_path / "j.jsonl")
    writer.append(put("e1", "a", 1))
    assert [r["event"] for r in reader.read_new()] == ["e1"]
    writer.append(put("e2", "a", 2))
    assert [r["event"] for r in reader.read_new()] == ["e2"]
    assert reader.read_new() == []
    writer.close()


def test_a_torn_last_line_is_skipped_and_the_next_record_survives(tmp_path):
    path = tmp_path / "j.jsonl"
    Journal(path).append(put("e1", "a", 1))
    with open(path, "ab") as f:
        f.write(b'{"op": "put", "event": "torn", "alert": {"id"')  # crash mid-write
    j = Journal(path)
    j.append(put("e2", "a", 2))
    records = Journal(path).read_new()
    assert [r["event"] for r in records] == ["e1", "e2"]
    j.close()


def test_an_unwritable_journal_raises_and_reports_unhealthy(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    j = Journal(blocker / "j.jsonl")  # a folder that cannot exist
    try:
        j.append(put("e1", "a", 1))
    except OSError:
        pass
    else:
        raise AssertionError("append should fail")
    assert not j.healthy and j.failed == 1


def test_latest_copy_wins_and_void_cancels_a_copy():
    records = [
        put("e1", "a", 1),
        put("e2", "a", 2),
        put("e3", "a", 3),
        {"op": "void", "event": "e3", "id": "a"},
        put("e4", "b", 1),
    ]
    latest = latest_alerts(records)
    assert latest["a"]["rev"] == 2 and latest["b"]["rev"] == 1
