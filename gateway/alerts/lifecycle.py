"""Pure functions that compute an alert's next copy: repeats while open, analyst actions, evidence bounds.

They never do I/O, so the store can recompute a change on top of another instance's newer copy when
its compare-and-set in Redis loses a race.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.alerts.model import (
    LEVELS,
    OPEN_STATUSES,
    TRANSITIONS,
    Alert,
    HistoryEntry,
    InvalidTransition,
    Level,
    Note,
    Occurrence,
    is_level,
    level_max,
)

MAX_LIST_ITEMS = 50
MAX_STRING = 2000
MAX_DEPTH = 6
MAX_EVIDENCE_BYTES = 64 * 1024
MAX_NOTE = 4000
ACTIONS = {"acknowledged": "acknowledge", "resolved": "resolve", "false_positive": "false_positive"}


def bound_evidence(value: Any, depth: int = 0) -> Any:
    """Evidence comes from counters and recent requests: keep it JSON-able and of bounded size."""
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        out = {str(k)[:200]: bound_evidence(v, depth + 1) for k, v in list(value.items())[:200]}
        if depth == 0 and len(orjson.dumps(out, default=str)) > MAX_EVIDENCE_BYTES:
            out = {k: (v if len(orjson.dumps(v, default=str)) <= 4096 else "…(truncated)") for k, v in out.items()}
            out["truncated"] = True
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [bound_evidence(v, depth + 1) for v in list(value)[:MAX_LIST_ITEMS]]
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "…"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return bound_evidence(str(value), depth + 1)


def repeat(
    alert: Alert,
    *,
    stamp: str,
    level: Level,
    score: float,
    summary: str,
    evidence: dict[str, Any] | None,
    max_occurrences: int,
    extra: int = 0,
) -> Alert:
    """The open alert after one more occurrence (plus ``extra`` coalesced ones without evidence)."""
    occurrences = list(alert.occurrences)
    if evidence is not None:
        occurrences.append(Occurrence(time=stamp, score=score, level=level, summary=summary, evidence=evidence))
        occurrences = occurrences[-max_occurrences:]
    new_level = level_max(alert.level, level)
    history = list(alert.history)
    if new_level != alert.level:
        history.append(HistoryEntry(time=stamp, actor="gateway", action="escalated", from_=alert.level, to=new_level))
    return alert.model_copy(
        update={
            "count": alert.count + (1 if evidence is not None else 0) + extra,
            "occurrences": occurrences,
            "level": new_level,
            "score": max(alert.score, score),
            "last_seen": stamp,
            "updated_at": stamp,
            "history": history,
            "rev": alert.rev + 1,
        }
    )


def apply_action(
    alert: Alert,
    *,
    stamp: str,
    actor: str,
    status: str | None = None,
    assignee: str | None = None,
    note: str | None = None,
) -> Alert:
    """The alert after an analyst action; raises InvalidTransition or ValueError when it is not allowed."""
    if not actor:
        raise ValueError("an action needs an actor")
    if status is None and assignee is None and note is None:
        raise ValueError("nothing to do: give a status, an assignee or a note")
    history = list(alert.history)
    notes = list(alert.notes)
    update: dict[str, Any] = {}
    new_status: str = alert.status
    if status is not None:
        if status not in TRANSITIONS:
            raise ValueError(f"unknown status {status!r}")
        if status not in TRANSITIONS[alert.status]:
            raise InvalidTransition(f"an alert that is {alert.status} cannot become {status}")
        history.append(HistoryEntry(time=stamp, actor=actor, action=ACTIONS[status], from_=alert.status, to=status))
        update["status"] = new_status = status
        if status == "acknowledged" and assignee is None and alert.assignee is None:
            assignee = actor  # acknowledging means "I am on it"
    if assignee is not None:
        new_assignee = assignee.strip() or None  # "" unassigns
        if new_status not in OPEN_STATUSES and status is None:
            raise InvalidTransition(f"an alert that is {alert.status} cannot be assigned")
        if new_assignee != alert.assignee:
            history.append(
                HistoryEntry(time=stamp, actor=actor, action="assign", from_=alert.assignee, to=new_assignee)
            )
            update["assignee"] = new_assignee
    if note is not None:
        text = note.strip()
        if not text:
            raise ValueError("the note is empty")
        if len(text) > MAX_NOTE:
            raise ValueError(f"the note is longer than {MAX_NOTE} characters")
        notes.append(Note(time=stamp, actor=actor, text=text))
        history.append(HistoryEntry(time=stamp, actor=actor, action="note", to=None))
    return alert.model_copy(
        update={**update, "notes": notes, "history": history, "updated_at": stamp, "rev": alert.rev + 1}
    )


def check_level(level: str) -> Level:
    if not is_level(level):
        raise ValueError(f"unknown level {level!r} (one of {', '.join(LEVELS)})")
    return level


def record_lift(alert: Alert, *, stamp: str, actor: str, action: str, rule: str, until: str, note: str) -> Alert:
    """The alert after an analyst lifted the block / step-up it recorded (any status: a closed
    alert keeps its verdict). History: ``lift_block`` / ``lift_step_up`` from "<action> by <rule>
    until <time>" to "lifted"; the analyst's reason is kept as a note."""
    if not actor:
        raise ValueError("a lift needs an actor")
    text = (note or "").strip()
    if not text:
        raise ValueError("a lift needs a note: why it is lifted")
    text = f"Lifted the {action.replace('_', '-')} ({rule}): {text}"[:MAX_NOTE]
    history = [
        *alert.history,
        HistoryEntry(
            time=stamp, actor=actor, action=f"lift_{action}", from_=f"{action} by {rule} until {until}", to="lifted"
        ),
    ]
    notes = [*alert.notes, Note(time=stamp, actor=actor, text=text)]
    return alert.model_copy(update={"notes": notes, "history": history, "updated_at": stamp, "rev": alert.rev + 1})
