"""The in-memory aggregator: audit records in, per user-day windows and user history out.

Training (replay of recorded audit logs) and the live scorer (gateway/scoring.py) feed records
through the same :meth:`Aggregator.add`, which asks :func:`detectors.events.count_event` what each
record adds, so a feature means exactly the same thing in both places.

Windows are UTC days. When a user's first record of a new day arrives, the previous day is closed
into the user's history (daily totals for relative features; countries, networks and user agents
seen, for novelty). Days named in ``exclude`` (confirmed-malicious, or labelled attacks in
training) are closed without entering the history, so an attacker's day never becomes "normal".
A listener, if given, sees a snapshot of a window whenever the user moves into a new time slot
(what the live scorer would have seen at that moment) and when a window closes.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC
from typing import Any

# the audit-file readers moved to detectors.auditlogs; re-exported for existing callers
from detectors.auditlogs import expand_paths, read_audit_logs
from detectors.events import Increments, count_event, zone_of  # one time-zone cache for both
from detectors.history import HISTORY_METRICS, History
from detectors.peers import Peers
from detectors.travel import speed_kmh

HISTORY_DAYS = 35  # relative features compare with the user's last five weeks (last month-end)
IMPOSSIBLE_KMH = 1000.0  # faster than an airliner door to door
SEQUENTIAL_GAP = 3  # id steps up to this count as walking through records (404s leave gaps)


class Window:
    """One user's activity on one UTC day, as far as it has been seen."""

    __slots__ = (
        "agents",
        "assignment",
        "countries",
        "counts",
        "day",
        "distinct",
        "excluded",
        "first",
        "hours",
        "impossible",
        "last",
        "last_id",
        "last_place",
        "longest",
        "max_speed",
        "networks",
        "new_agents",
        "new_countries",
        "new_country_off_hours",
        "new_country_requests",
        "new_networks",
        "night",
        "role",
        "run",
        "sequential",
        "slot",
        "unfamiliar",
        "unfamiliar_read",
    )

    def __init__(self, day: str, role: str, excluded: bool = False, team: str = ""):
        self.day, self.role = day, role
        self.assignment = f"{role}|{team}"  # a new role or team brings new territory
        self.excluded = excluded  # a day kept out of the history (and of the peers)
        self.counts: dict[str, int] = {}
        self.hours: dict[int, list[int]] = {}  # hour -> [requests, read, exported, deleted]
        self.distinct: set[str] = set()
        self.last_id: dict[str, int] = {}
        self.run = self.longest = self.sequential = 0
        self.new_countries: set[str] = set()
        self.new_networks: set[str] = set()
        self.new_agents: set[str] = set()
        self.new_country_requests = self.new_country_off_hours = self.night = 0
        self.countries: set[str] = set()
        self.networks: set[str] = set()
        self.agents: set[str] = set()
        self.last_place: tuple[float, str] | None = None
        self.max_speed = 0.0
        self.impossible = 0
        self.first: float | None = None  # epoch seconds of the window's first and last record
        self.last: float | None = None
        self.slot = -1
        self.unfamiliar = 0  # distinct records of the day the user had never touched before
        self.unfamiliar_read = 0  # of those, records viewed or listed (not exported: the export features' part)


def totals(w: Window) -> dict[str, int]:
    out = {m: w.counts.get(m, 0) for m in HISTORY_METRICS[:4]}
    out["distinct_records"] = len(w.distinct)
    out["unfamiliar_read"] = w.unfamiliar_read
    return out


Listener = Callable[[str, Window, History, bool], None]  # (user, window, history, final)


class Aggregator:
    def __init__(
        self,
        *,
        exclude: Iterable[tuple[str, str]] = (),
        listener: Listener | None = None,
        slot_seconds: int = 900,
        peers: Peers | None = None,
    ):
        self.exclude = set(exclude)
        self.listener = listener
        self.slot_seconds = slot_seconds
        self.windows: dict[str, Window] = {}
        self.history: dict[str, History] = {}
        self.exported_by_day: dict[str, dict[str, int]] = {}  # user -> day -> records exported
        # who has worked from which country since when (non-excluded days); shareable: the live
        # scorer gives every user's view one Peers of the replica
        self.peers = peers if peers is not None else Peers()
        self.records = 0

    def add(self, record: Mapping[str, Any]) -> str | None:
        """Counts one audit record; returns the user it was about (None if none)."""
        inc = count_event(record)
        if inc is None:
            return None
        when = inc.time.astimezone(UTC)
        day, user = when.date().isoformat(), inc.user
        hist = self.history.get(user) or self.history.setdefault(user, History())
        w = self.windows.get(user)
        if w is not None and w.day != day:
            if day < w.day:
                return user  # a late record of a closed day: history is already final
            self.close(user)
            w = None
        if w is None:
            role = ",".join(sorted(record.get("roles") or ())) or "-"
            team = str(record.get("team") or "")
            w = self.windows[user] = Window(day, role, (user, day) in self.exclude, team)
        ts = when.timestamp()
        slot = int(ts // self.slot_seconds)
        if self.listener is not None and w.slot != -1 and slot != w.slot:
            self.listener(user, w, hist, False)
        w.slot = slot
        self.records += 1
        self._count(w, hist, inc, record, ts)
        return user

    def _count(self, w: Window, hist: History, inc: Increments, record: Mapping[str, Any], ts: float) -> None:
        counts = w.counts
        for k, v in inc.counts.items():
            if v:
                counts[k] = counts.get(k, 0) + v
        hour = int(ts // 3600)
        h = w.hours.get(hour) or w.hours.setdefault(hour, [0, 0, 0, 0])
        h[0] += 1
        h[1] += inc.counts["records_read"]
        h[2] += inc.counts["records_exported"]
        h[3] += inc.counts["records_deleted"]
        if inc.record_keys:
            if hist.days:  # counted once per record, when it first shows in the day
                new = hist.unfamiliar({k for k in inc.record_keys if k not in w.distinct})
                w.unfamiliar += new
                if inc.action in ("view", "list"):
                    w.unfamiliar_read += new
            w.distinct.update(inc.record_keys)
        if inc.record_id is not None:
            prev = w.last_id.get(inc.resource or "")
            if prev is not None and 0 < abs(inc.record_id - prev) <= SEQUENTIAL_GAP:
                w.sequential += 1
                w.run += 1
                w.longest = max(w.longest, w.run)
            else:
                w.run = 1
            w.last_id[inc.resource or ""] = inc.record_id
        known = bool(hist.days)  # novelty needs a past: a first day has nothing to be new against
        country, network, agent = inc.country, inc.network, inc.user_agent
        off = inc.counts["off_hours"]
        if country:
            if country not in w.countries:
                w.countries.add(country)
                if not w.excluded:  # noted as it arrives: only earlier days count (detectors.peers)
                    self.peers.note(country, inc.user, w.day)
            if known and country not in hist.countries:
                w.new_countries.add(country)
                if self.rare_country(country, inc.user, w.day):
                    w.new_country_requests += 1
                    w.new_country_off_hours += off
            if w.last_place is not None and w.last_place[1] != country:
                speed = speed_kmh(w.last_place[1], country, ts - w.last_place[0])
                if speed is not None:
                    w.max_speed = max(w.max_speed, speed)
                    w.impossible += speed > IMPOSSIBLE_KMH
            w.last_place = (ts, country)
        if network:
            w.networks.add(network)
            if known and network not in hist.networks:
                w.new_networks.add(network)
        if agent:
            w.agents.add(agent)
            if known and agent not in hist.agents:
                w.new_agents.add(agent)
        local_hour = inc.time.astimezone(zone_of(record.get("timezone"))).hour
        w.night += local_hour < 6
        w.first = w.first or ts
        w.last = ts

    def rare_country(self, country: str, user: str, day: str | None = None) -> bool:
        """A country (new to ``user``) that fewer than ``PEER_COUNTRY_USERS`` other users worked
        from before ``day``: a trip to a colleague's destination is common, a session from a
        country nobody in the company uses is not. The peers are the users this aggregator knows:
        a replay split over N processes knows 1/N of them (a few rows differ,
        tests/detectors/test_rows.py); the live scorer loads the model's and shares what it learns
        (gateway.scoring.scorer)."""
        return self.peers.rare(country, user, day)

    @property
    def country_users(self) -> dict[str, dict[str, str]]:
        return self.peers.first

    def load_peers(self, state: Mapping[str, Any]) -> None:
        """Peer knowledge from a saved state (the model's history.json): which users have worked
        from which country since when."""
        self.peers.load(state.get("country_users", {}))

    def close(self, user: str) -> None:
        w = self.windows.pop(user, None)
        if w is None:
            return
        hist = self.history[user]
        if self.listener is not None:
            self.listener(user, w, hist, True)
        if (user, w.day) in self.exclude:
            return
        hist.days[w.day] = totals(w)
        if w.assignment != hist.role:
            hist.role, hist.role_day = w.assignment, w.day
        for old in sorted(hist.days)[:-HISTORY_DAYS]:
            del hist.days[old]
        hist.stats = None
        hist.countries |= w.countries
        hist.networks |= w.networks
        hist.agents |= w.agents
        hist.remember(w.distinct)
        exported = w.counts.get("records_exported", 0)
        if exported:
            by_day = self.exported_by_day.setdefault(user, {})
            by_day[w.day] = exported
            for old in sorted(by_day)[:-HISTORY_DAYS]:
                del by_day[old]

    def close_all(self) -> None:
        for user in sorted(self.windows):
            self.close(user)

    # --- the live scorer keeps history across restarts in the model directory ----------------
    def state(self) -> dict[str, Any]:
        return {
            "history": {
                u: {
                    "days": h.days,
                    "countries": sorted(h.countries),
                    "networks": sorted(h.networks),
                    "agents": sorted(h.agents),
                    "role": h.role,
                    "role_day": h.role_day,
                    "seen": base64.b64encode(zlib.compress(bytes(h.seen))).decode(),
                }
                for u, h in sorted(self.history.items())
            },
            "exported_by_day": self.exported_by_day,
            "country_users": self.peers.state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        for user, h in state.get("history", {}).items():
            hist = History()
            hist.days = {d: dict(t) for d, t in h["days"].items()}
            hist.countries, hist.networks = set(h["countries"]), set(h["networks"])
            hist.agents = set(h["agents"])
            hist.role, hist.role_day = h.get("role", ""), h.get("role_day", "")
            if h.get("seen"):
                seen = zlib.decompress(base64.b64decode(h["seen"]))
                if len(seen) == len(hist.seen):
                    hist.seen[:] = seen
            self.history[user] = hist
        self.exported_by_day = {u: dict(d) for u, d in state.get("exported_by_day", {}).items()}
        self.load_peers(state)


__all__ = ["Aggregator", "History", "Window", "expand_paths", "read_audit_logs", "totals"]
