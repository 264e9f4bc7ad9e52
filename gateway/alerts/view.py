"""The in-memory view of alerts one process knows: built from the journal, updated by every change.

It serves reads while Redis is down and is what replay writes back. It keeps the last few copies of
each alert (not only the newest) because a journalled copy can later be voided (it lost a race in
Redis), and the one before it must then be the newest again. ``open`` maps a de-duplication key to
the id of the open alert, for de-duplication without Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from gateway.alerts.journal import Journal
from gateway.alerts.model import LEVELS, STATUSES, Alert, parse_time

log = logging.getLogger("crmgw.alerts")
KEEP_COPIES = 4


class LocalView:
    def __init__(self, journal: Journal):
        self.journal = journal
        self._copies: dict[str, list[tuple[str | None, Alert]]] = {}  # id -> [(journal event, copy)], by rev
        self.open: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._copies)

    def refresh(self) -> None:
        """Apply whatever was appended to the journal since the last call (by any process)."""
        for record in self.journal.read_new():
            if record["op"] == "void":
                copies = self._copies.get(str(record.get("id")), [])
                copies[:] = [c for c in copies if c[0] != record.get("event")]
                if copies:
                    self._index(copies[-1][1])
                continue
            try:
                alert = Alert.model_validate(record.get("alert"))
            except ValidationError as exc:
                self.journal.corrupt_lines += 1
                log.warning("alerts journal: skipped an invalid alert copy: %s", exc.errors()[:1])
                continue
            self.remember(alert, record.get("event"))

    def remember(self, alert: Alert, event: str | None) -> None:
        copies = self._copies.setdefault(alert.id, [])
        if event is not None and any(e == event for e, _ in copies):
            return
        copies.append((event, alert))
        copies.sort(key=lambda c: c[1].rev)  # stable: among equal revs the last one seen wins
        del copies[:-KEEP_COPIES]
        self._index(copies[-1][1])

    def _index(self, alert: Alert) -> None:
        key = alert.dedupe_key
        if alert.is_open:
            holder = self.open.get(key)
            held = self.latest(holder) if holder else None
            if held is None or not held.is_open or holder == alert.id:
                self.open[key] = alert.id
        elif self.open.get(key) == alert.id:
            del self.open[key]

    def latest(self, alert_id: str) -> Alert | None:
        copies = self._copies.get(alert_id)
        return copies[-1][1] if copies else None

    def open_alert(self, key: str) -> Alert | None:
        alert_id = self.open.get(key)
        alert = self.latest(alert_id) if alert_id else None
        return alert if alert is not None and alert.is_open else None

    def all(self) -> Iterator[Alert]:
        return (copies[-1][1] for copies in list(self._copies.values()) if copies)

    def counts(self) -> dict[str, Any]:
        alerts = list(self.all())
        return {
            "by_status": {s: sum(a.status == s for a in alerts) for s in STATUSES},
            "by_level": {lv: sum(a.level == lv for a in alerts) for lv in LEVELS},
            "open_by_level": {lv: sum(a.level == lv and a.is_open for a in alerts) for lv in LEVELS},
        }


def alert_filter(
    *,
    status: str | Iterable[str] | None,
    level: str | None,
    type: str | None,
    user: str | None,
    since: str | datetime | None,
    until: str | datetime | None,
) -> tuple[set[str] | None, datetime | None, datetime | None, Callable[[Alert], bool]]:
    """Normalised filters (status: one or several; times: ISO strings or datetimes) and a predicate."""
    statuses = {status} if isinstance(status, str) else set(status) if status else None
    after = parse_time(since) if since is not None else None
    before = parse_time(until) if until is not None else None

    def matches(a: Alert) -> bool:
        return (
            (not statuses or a.status in statuses)
            and (level is None or a.level == level)
            and (type is None or a.type == type)
            and (user is None or a.user == user)
            and (after is None or a.epoch >= after.timestamp())
            and (before is None or a.epoch <= before.timestamp())
        )

    return statuses, after, before, matches
