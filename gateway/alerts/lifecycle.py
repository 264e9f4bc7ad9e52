"""Pure functions that compute an alert's next copy: repeats and recurrences while open, analyst
actions, evidence bounds.

They never do I/O, so the store can recompute a change on top of another instance's newer copy when
its compare-and-set in Redis loses a race.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.alerts.model import (
    DETERMINATIONS,
    LEVELS,
    OPEN_STATUSES,
    TRANSITIONS,
    VERDICT_STATUS,
    Alert,
    HistoryEntry,
    InvalidTransition,
    Level,
    Note,
    Occurrence,
    OwnAlert,
    is_level,
    level_max,
)

MAX_LIST_ITEMS = 50
MAX_STRING = 2000
MAX_DEPTH = 6
MAX_EVIDENCE_BYTES = 64 * 1024
MAX_NOTE = 4000
MAX_WINDOWS = 100  # windows kept on an alert that others joined (a week of days needs 7)
MAX_RECURRED_TEXT = 300  # the summary quoted in a ``recurred`` history entry
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
    window: str | None = None,
) -> Alert:
    """The open alert after one more occurrence (plus ``extra`` coalesced ones without evidence).
    One at a higher level escalates it and re-opens an acknowledged one (``reopened``)."""
    occurrences = list(alert.occurrences)
    if evidence is not None:
        occurrences.append(
            Occurrence(time=stamp, score=score, level=level, summary=summary, evidence=evidence, window=window)
        )
        occurrences = occurrences[-max_occurrences:]
    new_level = level_max(alert.level, level)
    history = list(alert.history)
    status = alert.status
    if new_level != alert.level:
        history.append(HistoryEntry(time=stamp, actor="gateway", action="escalated", from_=alert.level, to=new_level))
        if status == "acknowledged":
            # An analyst acknowledged what it was before: a worse occurrence (a critical echo day
            # joining a low alert) must not hide behind that. Back to open, the assignee kept.
            history.append(HistoryEntry(time=stamp, actor="gateway", action="reopened", from_=status, to="open"))
            status = "open"
    return alert.model_copy(
        update={
            "status": status,
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


def recur(
    alert: Alert,
    *,
    stamp: str,
    actor: str,
    window: str,
    level: Level,
    score: float,
    summary: str,
    evidence: dict[str, Any],
    max_occurrences: int,
) -> Alert:
    """The open alert after a later window of the same user and type joined it: one more
    occurrence (kept with its window and evidence), the window listed, ``recurrences`` + 1, and a
    ``recurred`` history entry naming the window, the score and the summary (the level and the
    score only ever go up, as for a repeat)."""
    joined = repeat(
        alert,
        stamp=stamp,
        level=level,
        score=score,
        summary=summary,
        evidence=evidence,
        max_occurrences=max_occurrences,
        window=window,
    )
    text = f"{window}: score {score:.3g}, {summary}"
    if len(text) > MAX_RECURRED_TEXT:
        text = text[: MAX_RECURRED_TEXT - 1] + "…"
    entry = HistoryEntry(time=stamp, actor=actor, action="recurred", from_=None, to=text)
    history = list(joined.history)
    history.insert(len(alert.history), entry)  # before an "escalated" entry the recurrence caused
    return joined.model_copy(
        update={
            "recurrences": alert.recurrences + 1,
            "windows": [*alert.windows, window][-MAX_WINDOWS:],
            "history": history,
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
    verdict: str | None = None,
    determination: str | None = None,
) -> Alert:
    """The alert after an analyst action; raises InvalidTransition or ValueError when it is not allowed.

    ``verdict`` (with an optional ``determination``) closes the alert with the status it implies
    (VERDICT_STATUS); on an alert already closed with that status it corrects the verdict only.
    """
    if not actor:
        raise ValueError("an action needs an actor")
    # The one check every triage path meets (console, API, bulk, incidents, CLI: AlertStore.transition):
    # an analyst closing the alerts about themselves would hide their own misuse.
    if alert.user == actor:
        raise OwnAlert(f"alert {alert.id} is about {actor}: another analyst must act on it")
    if determination is not None and verdict is None:
        raise ValueError("a determination needs a verdict")
    if status is None and assignee is None and note is None and verdict is None:
        raise ValueError("nothing to do: give a status, an assignee, a verdict or a note")
    history = list(alert.history)
    notes = list(alert.notes)
    update: dict[str, Any] = {}
    new_status: str = alert.status
    if verdict is not None:
        status = _verdict_status(alert, status, verdict, determination)
        if (verdict, determination) != (alert.verdict, alert.determination):
            history.append(
                HistoryEntry(
                    time=stamp,
                    actor=actor,
                    action="verdict",
                    from_=_verdict_text(alert.verdict, alert.determination),
                    to=_verdict_text(verdict, determination),
                )
            )
            update["verdict"], update["determination"] = verdict, determination
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


def _verdict_status(alert: Alert, status: str | None, verdict: str, determination: str | None) -> str | None:
    """The status a verdict moves the alert to (None: it already has it; only the verdict changes)."""
    if verdict not in VERDICT_STATUS:
        raise ValueError(f"unknown verdict {verdict!r} (one of {', '.join(VERDICT_STATUS)})")
    if determination is not None and determination not in DETERMINATIONS:
        raise ValueError(f"unknown determination {determination!r} (one of {', '.join(DETERMINATIONS)})")
    implied = VERDICT_STATUS[verdict]
    if status is not None and status != implied:
        raise ValueError(f"the verdict {verdict} closes an alert as {implied}, not {status}")
    return None if alert.status == implied else implied


def _verdict_text(verdict: str | None, determination: str | None) -> str | None:
    if verdict is None:
        return None
    return f"{verdict}/{determination}" if determination else verdict


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


def record_governance(alert: Alert, *, stamp: str, actor: str, action: str, to: str | None, note: str) -> Alert:
    """The alert after an analyst took a governance action from it (gateway/governance/actions.py):
    history ``governance_<action>`` (to: until when, if it ends) and the reason as a note."""
    text = f"{action.replace('_', '-').capitalize()} {alert.user}: {note.strip()}"[:MAX_NOTE]
    history = [*alert.history, HistoryEntry(time=stamp, actor=actor, action=f"governance_{action}", to=to)]
    notes = [*alert.notes, Note(time=stamp, actor=actor, text=text)]
    return alert.model_copy(update={"notes": notes, "history": history, "updated_at": stamp, "rev": alert.rev + 1})
