"""The alert life cycle as a truth table, repeats while open, and evidence bounds."""

from __future__ import annotations

from datetime import UTC

import pytest

from gateway.alerts import lifecycle
from gateway.alerts.model import STATUSES, Alert, InvalidTransition, new_alert_id

STAMP = "2026-03-03T10:00:00.000Z"


def alert(**over) -> Alert:
    data = {
        "id": new_alert_id(),
        "time": STAMP,
        "user": "alice",
        "type": "bulk-export",
        "level": "high",
        "score": 0.9,
        "summary": "s",
        "window": "2026-03-03",
        "last_seen": STAMP,
        "updated_at": STAMP,
    }
    data.update(over)
    return Alert(**data)


ALLOWED = {
    ("open", "acknowledged"),
    ("open", "resolved"),
    ("open", "false_positive"),
    ("acknowledged", "resolved"),
    ("acknowledged", "false_positive"),
    ("resolved", "false_positive"),
    ("false_positive", "resolved"),
}


@pytest.mark.parametrize("src", STATUSES)
@pytest.mark.parametrize("dst", STATUSES)
def test_status_transitions_truth_table(src, dst):
    a = alert(status=src)
    if (src, dst) in ALLOWED:
        b = lifecycle.apply_action(a, stamp=STAMP, actor="heidi", status=dst)
        assert b.status == dst and b.rev == a.rev + 1
        assert b.history[0].model_dump(by_alias=True)["from"] == src
    else:
        with pytest.raises(InvalidTransition):
            lifecycle.apply_action(a, stamp=STAMP, actor="heidi", status=dst)


def test_acknowledging_takes_the_alert():
    b = lifecycle.apply_action(alert(), stamp=STAMP, actor="heidi", status="acknowledged")
    assert b.assignee == "heidi"
    assert [h.action for h in b.history] == ["acknowledge", "assign"]


def test_closed_alert_cannot_be_assigned_but_can_take_notes():
    closed = alert(status="resolved")
    with pytest.raises(InvalidTransition):
        lifecycle.apply_action(closed, stamp=STAMP, actor="heidi", assignee="grace")
    b = lifecycle.apply_action(closed, stamp=STAMP, actor="heidi", note="post-mortem done")
    assert b.notes[-1].text == "post-mortem done" and b.notes[-1].actor == "heidi"


@pytest.mark.parametrize("kwargs", [{}, {"note": "   "}, {"note": "x" * 5000}, {"status": "reopened"}])
def test_meaningless_actions_are_refused(kwargs):
    with pytest.raises(ValueError):
        lifecycle.apply_action(alert(), stamp=STAMP, actor="heidi", **kwargs)


def test_repeat_counts_escalates_and_bounds_occurrences():
    a = alert()
    for i in range(5):
        a = lifecycle.repeat(
            a,
            stamp=STAMP,
            level="critical" if i == 3 else "low",
            score=float(i),
            summary=f"repeat {i}",
            evidence={"i": i},
            max_occurrences=3,
        )
    assert a.count == 6 and a.level == "critical" and a.score == 4.0
    assert [o.evidence["i"] for o in a.occurrences] == [2, 3, 4]
    assert [h.action for h in a.history] == ["escalated"]


def test_evidence_is_bounded_and_json_safe():
    ev = lifecycle.bound_evidence({"rows": list(range(500)), "path": "x" * 10_000, "obj": object(), "ip": {1, 2}})
    assert len(ev["rows"]) == lifecycle.MAX_LIST_ITEMS
    assert len(ev["path"]) <= lifecycle.MAX_STRING + 1
    assert isinstance(ev["obj"], str) and sorted(ev["ip"]) == [1, 2]


def test_ids_sort_by_time():
    from datetime import datetime

    early = new_alert_id(datetime(2026, 1, 1, tzinfo=UTC))
    late = new_alert_id(datetime(2026, 1, 2, tzinfo=UTC))
    assert len(early) == 26 and early < late
    assert len({new_alert_id() for _ in range(1000)}) == 1000
