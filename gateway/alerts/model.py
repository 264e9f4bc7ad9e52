"""The alert record, its life cycle and its identifiers.

An alert is one suspicion about one user: what fired (``type``, ``rule``, ``source``), how bad
(``level``, ``score``), why (``evidence``: counters, baseline, the features that drove it, recent
requests), and what analysts did about it (``status``, ``assignee``, ``notes``, ``history``).

Life cycle (anything else is refused with ``InvalidTransition``)::

    open ──► acknowledged ──► resolved ◄──► false_positive
      └──────────────────────────┴──────────────┘

``resolved`` means "it was real" (the verdict ``confirmed`` for the next training run) and
``false_positive`` means "benign"; an analyst may correct one into the other, but a closed alert is
never reopened: the next occurrence opens a new alert.

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
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "resolved", "false_positive"}),
    "acknowledged": frozenset({"resolved", "false_positive"}),
    "resolved": frozenset({"false_positive"}),
    "false_positive": frozenset({"resolved"}),
}


class InvalidTransition(ValueError):
    """An analyst action that the alert's current status does not allow (API: 409)."""


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
        str  # raised | repeated | acknowledge | resolve | false_positive | assign | note | lift_block | lift_step_up
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
    last_seen: str = ""
    updated_at: str = ""
    rev: int = 1

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

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


def is_level(value: str) -> TypeGuard[Level]:
    return value in LEVELS


def level_max(a: Level, b: Level) -> Level:
    return a if LEVELS.index(a) >= LEVELS.index(b) else b
