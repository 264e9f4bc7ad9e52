"""The alert record, its life cycle and its identifiers.

An alert is one suspicion about one user: what fired (``type``, ``rule``, ``source``), how bad
(``level``, ``score``), why (``evidence``: counters, baseline, the features that drove it, recent
requests), and what analysts did about it (``status``, ``assignee``, ``notes``, ``history``).

Life cycle (anything else is refused with ``InvalidTransition``)::

    open ──► acknowledged ──► resolved ◄──► false_positive
      └──────────────────────────┴──────────────┘

(The gateway, not an analyst, moves an acknowledged alert back to open when a repeat or a joined
window raises its level: ``reopened`` in its history, the assignee kept.)

``resolved`` means "it was real" (the verdict ``confirmed`` for the next training run) and
``false_positive`` means "benign"; an analyst may correct one into the other, but a closed alert is
never reopened: the next occurrence opens a new alert.

A closed alert also carries the analyst's classification (``verdict``: true_positive,
benign_true_positive, false_positive) and a ``determination`` (compromised_account, ...). Alerts
closed before these fields existed have neither: their status alone says what they were (see
:func:`classification`).

A detector alert on a later day (a new ``window``) of a user who still has an OPEN alert of that
type raised within ``alerts.join_days`` *joins* that alert instead of opening another
(``recurrences``, ``windows``, a ``recurred`` history entry: gateway/alerts/intake.py); a closed
alert is never joined.

``rev`` increases by one on every change; it is how the journal replay and several gateway
instances agree on which copy of an alert is the newest.
"""

from __future__ import annotations

import os
import time as _time
from datetime import UTC, datetime
from typing import Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["low", "medium", "high", "critical"]
Status = Literal["open", "acknowledged", "resolved", "false_positive"]
# threshold: a declared anomaly rule; detector: the trained model; enforcement: the gateway saw
# something it could not prevent (a write the CRM committed outside the caller's scope);
# signals: the behaviour counters themselves were lost (gateway/signals/epoch.py)
Source = Literal["threshold", "detector", "enforcement", "signals"]
LEVELS: tuple[str, ...] = ("low", "medium", "high", "critical")
STATUSES: tuple[str, ...] = ("open", "acknowledged", "resolved", "false_positive")
OPEN_STATUSES = frozenset({"open", "acknowledged"})
Verdict = Literal["true_positive", "benign_true_positive", "false_positive"]
VERDICTS: tuple[str, ...] = ("true_positive", "benign_true_positive", "false_positive")
DETERMINATIONS: tuple[str, ...] = (
    "compromised_account",
    "policy_violation",
    "insider_threat",
    "authorized_activity",
    "test",
    "other",
)
# The status a verdict closes an alert with: only a false positive is "not real".
VERDICT_STATUS = {"true_positive": "resolved", "benign_true_positive": "resolved", "false_positive": "false_positive"}
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "resolved", "false_positive"}),
    "acknowledged": frozenset({"resolved", "false_positive"}),
    "resolved": frozenset({"false_positive"}),
    "false_positive": frozenset({"resolved"}),
}


class InvalidTransition(ValueError):
    """An analyst action that the alert's current status does not allow (API: 409)."""


class OwnAlert(ValueError):
    """Nobody triages an alert about themselves (API, console: 403 ``own-alert``); another analyst
    must, as governance refuses acting on one's own account (gateway/governance/actions.py)."""

    reason = "own-alert"


class AlertNotFound(KeyError):
    """No alert with that id (API: 404)."""


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time: str
    actor: str
    text: str


class HistoryEntry(BaseModel):
    time: str
    actor: str
    action: (
        str  # raised | recurred | escalated | reopened | acknowledge | resolve | false_positive | verdict
        # | assign | note
        # | lift_block | lift_step_up | governance_<action>
    )
    # "from"/"to" are Python keywords: aliases keep the JSON field names the console expects.
    from_: Any = Field(None, alias="from")
    to: Any = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Occurrence(BaseModel):
    """A repeat of an open alert: the new evidence is kept (bounded) instead of a new alert."""

    model_config = ConfigDict(extra="forbid")
    time: str
    score: float
    level: Level
    summary: str
    evidence: dict[str, Any] = {}
    window: str | None = None  # the window it was raised for (None: written before windows were kept)


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    time: str  # ISO 8601 UTC, when first raised
    user: str
    type: str
    level: Level
    score: float
    summary: str
    evidence: dict[str, Any] = {}
    rule: str | None = None
    window: str = ""
    source: Source = "threshold"  # see Source
    status: Status = "open"
    assignee: str | None = None
    notes: list[Note] = []
    history: list[HistoryEntry] = []
    count: int = 1  # occurrences while open, this one included
    occurrences: list[Occurrence] = []  # the latest repeats, newest last, bounded
    recurrences: int = 0  # later windows that joined this open alert (see the module docstring)
    windows: list[str] = []  # those windows, oldest first, bounded (``window`` itself not included)
    last_seen: str = ""
    updated_at: str = ""
    rev: int = 1
    verdict: Verdict | None = None  # set with the status by a triage that names one
    determination: str | None = None  # one of DETERMINATIONS

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def all_windows(self) -> list[str]:
        """The window it was raised for, then every window that joined it."""
        return [self.window, *self.windows]

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(self.user, self.type, self.window)

    @property
    def epoch(self) -> float:
        return parse_time(self.time).timestamp()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def dedupe_key(user: str, type: str, window: str) -> str:
    """One open alert per (user, type, window); \\x1f cannot appear in sensible ids."""
    return f"{user}\x1f{type}\x1f{window}"


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {value!r}")
    return dt


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_alert_id(now: datetime | None = None) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, Crockford base32, 26 characters.

    Ids sort by creation time (lexically), so the newest alerts are found without a lookup.
    """
    ms = int((now.timestamp() if now else _time.time()) * 1000)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def classification(alert: Alert | dict[str, Any]) -> str | None:
    """The verdict of a closed alert: its own, or (closed before verdicts existed) the status's."""
    data = alert if isinstance(alert, dict) else alert.to_dict()
    if data.get("status") not in ("resolved", "false_positive"):
        return None
    verdict = data.get("verdict")
    if verdict in VERDICTS:
        return str(verdict)
    return "false_positive" if data.get("status") == "false_positive" else "true_positive"


def is_level(value: str) -> TypeGuard[Level]:
    return value in LEVELS


def level_max(a: Level, b: Level) -> Level:
    return a if LEVELS.index(a) >= LEVELS.index(b) else b
