"""Blocks and step-ups an analyst controls: what is in force, and lifting it with a reason.

An anomaly rule's ``block`` / ``step_up`` lasts ``action_ttl`` unless an analyst lifts it. Both
the list and the lift work on the shared store (gateway/signals/enforcement.py), so the console of
any instance and ``crmgw blocks`` (which needs no running gateway) agree:

    list   the measures in force as Redis holds them (memory backend: this process's)
    lift   USER [ACTION] by an actor with a note:
             1. the measure leaves Redis and a lift is published: every instance stops refusing
                at once (the one lifting drops it from its own state before any I/O)
             2. the alert that recorded the measure (``Measure.alert``) gets a history entry
                ``lift_block`` / ``lift_step_up`` (actor, time, what was lifted) and the note --
                journalled and shared like any analyst action
             3. one WARNING log line on ``crmgw.blocks``: who lifted what, why, which alert

The lift comes before its record on purpose: an analyst lifting a block wants it gone even when
the alerts journal cannot be written; the log line is then the record and the result says so.
The user's counters are not reset: a rule fires again only when its threshold is crossed again
(gateway/signals/thresholds.py), i.e. on a new episode, not on the next request.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.signals.enforcement import ACTIONS, Enforcement, Measure

log = logging.getLogger("crmgw.blocks")
MAX_NOTE = 2000


@dataclasses.dataclass(frozen=True, slots=True)
class Lifted:
    measure: Measure
    recorded_in: str | None  # the alert whose history records the lift
    problem: str | None  # why it could not be recorded there (the log line still is)

    def to_dict(self) -> dict[str, Any]:
        return {**measure_dict(self.measure), "recorded_in": self.recorded_in, "problem": self.problem}


class LiftRecorder(Protocol):
    """Where a lift is recorded: the alert store (gateway.alerts.store.AlertStore.record_lift)."""

    async def record_lift(
        self, alert_id: str, *, actor: str, action: str, rule: str, until: str, note: str
    ) -> object: ...


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def measure_dict(m: Measure) -> dict[str, Any]:
    return {
        "user": m.user,
        "action": m.action,
        "rule": m.rule,
        "since": iso(m.since) if m.since else None,
        "until": iso(m.until),
        "alert": m.alert or None,
    }


async def active(enforcement: Enforcement, now: float, *, user: str | None = None) -> list[Measure]:
    """Blocks and step-ups in force (Redis: as every instance sees them), oldest first."""
    found = await enforcement.active(now)
    return [m for m in found if user is None or m.user == user]


def check_request(user: str, action: str | None, note: str | None, actor: str | None) -> str:
    """The note, stripped; raises ValueError when the request is incomplete."""
    if not user:
        raise ValueError("name the user whose block to lift")
    if action is not None and action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    if not actor:
        raise ValueError("a lift needs an actor")
    text = (note or "").strip()
    if not text:
        raise ValueError("a lift needs a note: why it is lifted")
    if len(text) > MAX_NOTE:
        raise ValueError(f"the note is longer than {MAX_NOTE} characters")
    return text


async def lift(
    enforcement: Enforcement,
    alerts: LiftRecorder | None,
    *,
    user: str,
    action: str | None = None,
    actor: str,
    note: str,
    now: float,
    fallback_alert: str | None = None,
) -> list[Lifted]:
    """Lift ``user``'s measures in force (one ``action``, or all); [] when none was in force.

    ``alerts`` is the AlertStore (None: nothing to record in but the log); ``fallback_alert`` records
    a measure that names no alert (the console passes the alert being marked false positive). Raises
    ValueError for an incomplete request and the storage error when Redis cannot be reached.
    """
    text = check_request(user, action, note, actor)
    out: list[Lifted] = []
    for m in await active(enforcement, now, user=user):
        if action is not None and m.action != action:
            continue
        removed = await enforcement.lift(m.user, m.action)
        if removed is None:  # expired or lifted by someone else in between
            continue
        if not removed.alert and fallback_alert:
            removed = dataclasses.replace(removed, alert=fallback_alert)
        recorded, problem = await _record(alerts, removed, actor, text)
        log.warning(
            "blocks: %s lifted the %s of %s (rule %s, since %s, until %s, alert %s): %s",
            actor,
            removed.action,
            removed.user,
            removed.rule,
            iso(removed.since) if removed.since else "-",
            iso(removed.until),
            removed.alert or "-",
            text,
        )
        out.append(Lifted(removed, recorded, problem))
    return out


async def _record(alerts: LiftRecorder | None, m: Measure, actor: str, note: str) -> tuple[str | None, str | None]:
    if not m.alert:
        return None, "the measure names no alert (the alert sink had not answered)"
    if alerts is None:
        return None, "alerts are not configured"
    try:
        await alerts.record_lift(m.alert, actor=actor, action=m.action, rule=m.rule, until=iso(m.until), note=note)
    except Exception as exc:  # AlertNotFound, JournalUnavailable, a race: the log line stays the record
        log.error("blocks: lift of %s/%s not recorded in alert %s: %r", m.user, m.action, m.alert, exc)
        return None, f"not recorded in alert {m.alert}: {type(exc).__name__}: {exc}"
    return m.alert, None
