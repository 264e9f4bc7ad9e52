"""A simulation's events on their way to the audit files, with memory bounded by one day's.

The simulator draws every user's traffic user by user (the random stream decides what a world
is), then the attacks, then each audit line's ids in time order. Keeping every event until the end
took 19 GB for 10,000 users x 10 days; instead each event is spilled, as soon as it is drawn, to a
file of its UTC day, and the days are then read back one at a time, sorted and written. Events of
one UTC day all sort before the next day's, and the spill keeps the order events were drawn in
(the sort is stable), so the audit lines are exactly those of the in-memory sort.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from detectors.simulate import Event

MAX_IDS = 200  # an audit line lists at most this many record ids

# a spilled event: what its audit line needs (the user as they were that day: roles, team, zone)
Row = list[Any]  # [ts, user, roles, team, tz, ip, country, method, path, query, ua, operation,
#                  resource_id, status, returned, ids, targets]


def row_of(ev: Event) -> Row:
    u = ev.user
    return [
        ev.ts,
        u.id,
        u.roles,
        u.team,
        u.site.tz,
        ev.ip,
        ev.country,
        ev.method,
        ev.path,
        ev.query,
        ev.ua,
        ev.operation,
        ev.resource_id,
        ev.status,
        ev.returned,
        list(ev.ids[:MAX_IDS]),
        ev.targets,
    ]


def record_of(row: Row, rng: random.Random) -> dict[str, Any]:
    """The event as the gateway's audit line (gateway/audit/events.py keys)."""
    ts, user, roles, team, tz, ip, country, method, path, query, ua, operation, resource_id = row[:13]
    status, returned, ids, targets = row[13:]
    allowed = status < 400
    rid = f"{rng.getrandbits(64):016x}"
    return {
        "time": datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds"),
        "decision_id": rid,
        "request_id": rid,
        "labels": {"version": "sim", "revision": "sim"},
        "user": user,
        "roles": roles,
        "auth": "jwt",
        "mfa": False,
        "team": team,
        "timezone": tz,
        "client_ip": ip,
        "country": country,
        "method": method,
        "path": path,
        "query": query or {},
        "user_agent": ua,
        "operation": operation,
        "resource_id": resource_id,
        "effect": "allow" if allowed else "deny",
        "reason": "rule-allow" if allowed else ("not-found" if status == 404 else "scope-denied"),
        "rules": ["sim"],
        "reasons": [],
        "scope": "own" if allowed else None,
        "shadow": [],
        "status": status,
        "upstream_status": status if status != 403 else None,
        "upstream_credential": "service" if status != 403 else None,
        "records_seen": returned,
        "records_returned": returned,
        "record_ids": ids,
        "targets": targets,
        "fields_masked": [],
        "bytes_out": 200 + 180 * returned,
        "latency_ms": round(rng.uniform(3, 40), 3),
    }


class DaySpill:
    """Events appended to one file per UTC day under ``folder``; read back a day at a time."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files: dict[str, IO[bytes]] = {}
        self.events = 0

    def add(self, ev: Event) -> None:
        day = datetime.fromtimestamp(ev.ts, UTC).date().isoformat()
        fh = self.files.get(day)
        if fh is None:
            fh = self.files[day] = open(self.folder / f"{day}.spill", "ab")  # noqa: SIM115 (closed in day())
        fh.write(orjson.dumps(row_of(ev)))
        fh.write(b"\n")
        self.events += 1

    def days(self) -> list[str]:
        return sorted(self.files)

    def day(self, day: str) -> list[Row]:
        """The day's events in time order (ties: the order they were drawn in); frees its file."""
        self.files.pop(day).close()
        path = self.folder / f"{day}.spill"
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        path.unlink()
        rows.sort(key=lambda r: (r[0], r[1]))
        return rows

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()
        self.files.clear()
