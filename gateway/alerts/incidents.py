"""Incidents: a user's related alerts seen as one case (computed from the alerts, never stored).

Grouping: alerts of one user whose first occurrences lie within ``window`` of the previous alert
in the group (a chain: a burst of alerts over a morning is one incident), plus alerts of *other*
users that share a piece of evidence with the group (the same request id or client address)
are listed as related. Because an incident is derived from its alerts, every replica and the CLI
agree on it without another store, and triaging an incident is triaging its alerts (journalled
one by one, gateway/alerts/triage.py).

    id        the id of its first alert (stable while that alert exists)
    status    open while any alert is open (acknowledged when all open ones are), else closed
    severity  the highest level of its alerts;   score: the highest score
    assignee  the assignee all its open alerts share ("several" when they differ)
    timeline  every history entry of every alert, oldest first, naming the alert
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from gateway.alerts.model import LEVELS, Alert, Level, level_max, parse_time

DEFAULT_WINDOW = timedelta(hours=24)
SHARED_KEYS = ("request_id", "client_ip")


@dataclasses.dataclass
class Incident:
    id: str
    user: str
    alerts: list[Alert]

    @property
    def severity(self) -> Level:
        level: Level = "low"
        for a in self.alerts:
            level = level_max(level, a.level)
        return level

    @property
    def status(self) -> str:
        open_ = [a for a in self.alerts if a.is_open]
        if not open_:
            return "closed"
        return "acknowledged" if all(a.status == "acknowledged" for a in open_) else "open"

    @property
    def is_open(self) -> bool:
        return self.status != "closed"

    @property
    def assignee(self) -> str | None:
        names = {a.assignee for a in self.alerts if a.is_open and a.assignee}
        return None if not names else names.pop() if len(names) == 1 else "several"

    @property
    def first(self) -> str:
        return self.alerts[0].time

    @property
    def last(self) -> str:
        return max(a.last_seen or a.time for a in self.alerts)

    @property
    def types(self) -> list[str]:
        return sorted({a.type for a in self.alerts})

    def timeline(self) -> list[dict[str, Any]]:
        rows = [
            {"time": h.time, "actor": h.actor, "action": h.action, "from": h.from_, "to": h.to, "alert": a.id}
            for a in self.alerts
            for h in a.history
        ]
        return sorted(rows, key=lambda r: (str(r["time"]), r["alert"]))


def group_incidents(alerts: Iterable[Alert], window: timedelta = DEFAULT_WINDOW) -> list[Incident]:
    """The incidents of ``alerts``, the one with the highest open severity and newest first."""
    by_user: dict[str, list[Alert]] = {}
    for a in sorted(alerts, key=lambda a: a.id):
        by_user.setdefault(a.user, []).append(a)
    out: list[Incident] = []
    for user, theirs in by_user.items():
        current: list[Alert] = []
        for a in theirs:
            if current and parse_time(a.time) - parse_time(current[-1].last_seen or current[-1].time) > window:
                out.append(Incident(current[0].id, user, current))
                current = []
            current.append(a)
        if current:
            out.append(Incident(current[0].id, user, current))
    rank = {lv: i for i, lv in enumerate(LEVELS)}
    return sorted(out, key=lambda i: (not i.is_open, -rank[i.severity], _neg(i.alerts[-1].id)))


def shared_evidence(incident: Incident, others: Iterable[Alert]) -> list[tuple[Alert, str]]:
    """Alerts outside ``incident`` that share a request id or client address with it, and which."""
    mine = {(k, v) for a in incident.alerts for k, v in _evidence_keys(a)}
    ids = {a.id for a in incident.alerts}
    found = []
    for other in others:
        if other.id in ids:
            continue
        shared = sorted(f"{k}={v}" for k, v in _evidence_keys(other) if (k, v) in mine)
        if shared:
            found.append((other, ", ".join(shared)))
    return found


def _evidence_keys(alert: Alert) -> set[tuple[str, str]]:
    ev: dict[str, Any] = alert.evidence or {}
    out = set()
    request = ev.get("request")
    sources: list[dict[str, Any]] = [ev, request if isinstance(request, dict) else {}]
    sources += [r for r in ev.get("recent_requests") or [] if isinstance(r, dict)]
    for source in sources:
        for key in SHARED_KEYS:
            value = source.get(key)
            if isinstance(value, str) and value:
                out.add((key, value))
    return out


def find_incident(incidents: list[Incident], incident_id: str) -> Incident | None:
    return next((i for i in incidents if i.id == incident_id), None)


def _neg(alert_id: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in alert_id)
