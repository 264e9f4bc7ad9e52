"""Governance actions an analyst takes on a user, each audited and reversible.

    suspend USER [until]       the overlay refuses every request of USER (``user-suspended``); a
                               second one keeps the later ``until`` (until lifted wins) and the
                               record says so (``earlier``, ``kept``)
    unsuspend USER             the reverse
    block USER for N seconds   an anomaly-style block (gateway/signals/enforcement.py), rule
                               ``analyst:<actor>``: lifted like any block (pages_blocks, ``crmgw blocks``)
    step_up USER for N seconds the same with a step-up (the user must present MFA)

Every action is audited three ways: one JSON line appended (fsync) to the governance journal
(who, when, what, why, which alert), one WARNING log line on ``crmgw.governance``, and, when taken
from an alert, an entry in that alert's history (the alerts journal, shared like any triage).
The action comes before its record on purpose (as a lift does, gateway/signals/blocks.py): an
analyst suspending a compromised account wants it done even when a journal cannot be written.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gateway.governance.overlay import MAX_NOTE, Suspension

if TYPE_CHECKING:
    from gateway.alerts.store import AlertStore
    from gateway.governance.guard import GovernanceGuard
    from gateway.signals.enforcement import Enforcement

log = logging.getLogger("crmgw.governance")
ACTIONS = ("suspend", "unsuspend", "block", "step_up")
MAX_PERIOD = 90 * 86400


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def check(user: str, actor: str, note: str | None, action: str) -> str:
    """The note, stripped; raises ValueError for an incomplete or forbidden request."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    if not user:
        raise ValueError("name the user")
    if not actor:
        raise ValueError("an action needs an actor")
    if user == actor:
        raise ValueError("nobody may act on their own account; ask another analyst")
    text = (note or "").strip()
    if not text:
        raise ValueError("a governance action needs a note: why")
    if len(text) > MAX_NOTE:
        raise ValueError(f"the note is longer than {MAX_NOTE} characters")
    return text


def period(seconds: str | int | None, *, required: bool) -> int:
    """A period in seconds (1 .. 90 days); 0 when not required and not given."""
    if seconds in (None, ""):
        if required:
            raise ValueError("give a period")
        return 0
    try:
        value = int(seconds)
    except (TypeError, ValueError):
        raise ValueError("the period must be a number of seconds") from None
    if not 0 < value <= MAX_PERIOD:
        raise ValueError(f"the period must be between 1 second and {MAX_PERIOD // 86400} days")
    return value


class Governor:
    """Takes the actions: the guard's overlay, the signals' enforcement, the alert store, a journal."""

    def __init__(
        self,
        guard: GovernanceGuard,
        journal: Path,
        *,
        enforcement: Enforcement | None = None,
        alerts: AlertStore | None = None,
    ):
        self.guard, self.journal, self.enforcement, self.alerts = guard, Path(journal), enforcement, alerts

    async def act(
        self,
        action: str,
        user: str,
        *,
        actor: str,
        note: str | None,
        seconds: str | int | None = None,
        alert: str | None = None,
    ) -> dict[str, Any]:
        """Do ``action``; the audit record. Raises ValueError (bad request), LookupError (nothing to
        undo) or the storage error when Redis cannot be reached."""
        text = check(user, actor, note, action)
        now = self.guard.now()
        span = period(seconds, required=action in ("block", "step_up"))
        record: dict[str, Any] = {"time": iso(now), "actor": actor, "action": action, "user": user, "note": text}
        if alert:
            record["alert"] = alert
        if action == "suspend":
            new = Suspension(user, actor, text, now, now + span if span else 0.0, alert or "")
            outcome = await self.guard.store.suspend(new, now)
            # A second suspend never shortens the first: the later ``until`` stays (until lifted
            # wins), and the record says which one is in force so the analyst is told.
            record["until"] = iso(outcome.kept.until) if outcome.kept.until else None
            if outcome.earlier is not None:
                record["earlier"] = {
                    "actor": outcome.earlier.actor,
                    "until": iso(outcome.earlier.until) if outcome.earlier.until else None,
                }
                record["kept"] = "earlier" if outcome.kept_earlier else "this"
        elif action == "unsuspend":
            if await self.guard.store.lift(user) is None:
                raise LookupError(f"{user} is not suspended")
        else:
            from gateway.signals.enforcement import Measure

            if self.enforcement is None:
                raise LookupError("behaviour signals are not running: blocks and step-ups are not available")
            await self.enforcement.impose(Measure(user, action, f"analyst:{actor}", now + span, now, alert or ""))
            record["until"] = iso(now + span)
        self._audit(record)
        if alert and self.alerts is not None:
            record["recorded_in"] = await self._record_in_alert(record)
        return record

    def _audit(self, record: dict[str, Any]) -> None:
        log.warning(
            "governance: %s did %s on %s (until %s, alert %s): %s",
            record["actor"],
            record["action"],
            record["user"],
            record.get("until") or "-",
            record.get("alert") or "-",
            record["note"],
        )
        try:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, orjson.dumps(record) + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:  # the log line above is then the record
            log.error("governance: journal %s not written: %r", self.journal, exc)
            record["problem"] = "the governance journal could not be written"

    async def _record_in_alert(self, record: dict[str, Any]) -> str | None:
        assert self.alerts is not None
        try:
            await self.alerts.record_governance(
                record["alert"],
                actor=record["actor"],
                action=record["action"],
                to=record.get("until"),
                note=record["note"],
            )
        except Exception as exc:  # AlertNotFound, JournalUnavailable: the governance journal stays the record
            log.error("governance: %s not recorded in alert %s: %r", record["action"], record["alert"], exc)
            return None
        return str(record["alert"])


def read_journal(path: Path, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` governance records, newest first (a torn line is skipped)."""
    try:
        lines = Path(path).read_bytes().splitlines()[-limit:]
    except FileNotFoundError:
        return []
    out = []
    for raw in reversed(lines):
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(row, dict):
            out.append(row)
    return out
