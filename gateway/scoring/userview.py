"""One user's features as the offline replay would compute them, from the shared live state.

A :class:`UserView` is the user's stored history (closed days) with the records of their open days
replayed on top, in time order, through a one-user :class:`detectors.replay.Aggregator` — exactly
what the training replay does with the same audit lines. A replica keeps the views it built and
only replays the records appended since (gateway.scoring.livestate's fetch says whether the cached
view is still exact; a record of another replica that sorts before the cached ones rebuilds it).

When the user's records reach past a closed day's end by the grace period, the view's history is
the state to store (:meth:`UserView.closable`): the day's final feature row is kept with it
(``rows``), which is the user's own baseline in alert evidence and the per-user-day feature row of
that day.
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from detectors.events import parse_time
from detectors.features import compute
from detectors.peers import Peers
from detectors.replay import HISTORY_DAYS, Aggregator, History, Window
from gateway.scoring.livestate import NO_DAY, Fetched, member_json

RECENT_REQUESTS = 10
# what the detector and the evidence read of an audit record (the rest stays in the audit log)
KEPT_FIELDS = (
    "time",
    "user",
    "roles",
    "team",
    "timezone",
    "client_ip",
    "country",
    "method",
    "path",
    "user_agent",
    "operation",
    "resource_id",
    "effect",
    "status",
    "records_returned",
    "record_ids",
    "targets",
)


def epoch_ms(record: dict[str, Any]) -> int:
    return int(parse_time(record["time"]).timestamp() * 1000)


MAX_PATH = 256  # the path only serves as evidence; an 8 KB one need not be kept per record


def compact(record: dict[str, Any]) -> bytes:
    kept = {k: record[k] for k in KEPT_FIELDS if record.get(k) is not None}
    if isinstance(kept.get("path"), str) and len(kept["path"]) > MAX_PATH:
        kept["path"] = kept["path"][:MAX_PATH]
    return orjson.dumps(kept)


def day_end_ms(day: str) -> int:
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return int((start + timedelta(days=1)).timestamp() * 1000) - 1


def user_state(agg: Aggregator, user: str, rows: dict[str, list[float]]) -> dict[str, Any]:
    """One user's stored state: the aggregator's history (its own format) plus closed days' rows."""
    state = agg.state()
    return {
        "history": {user: state["history"][user]} if user in state["history"] else {},
        "exported_by_day": {user: state["exported_by_day"][user]} if user in state["exported_by_day"] else {},
        "rows": rows,
    }


def seed_from(model_history: dict[str, Any], user: str) -> dict[str, Any]:
    """The user's history as the model's training left it (a user never seen live)."""
    hist = model_history.get("history", {}).get(user)
    exported = model_history.get("exported_by_day", {}).get(user)
    return {
        "history": {user: hist} if hist else {},
        "exported_by_day": {user: exported} if exported else {},
        "rows": {},
    }


class UserView:
    def __init__(
        self, user: str, through_ms: int, state: dict[str, Any], slot_seconds: int = 900, peers: Peers | None = None
    ):
        self.user, self.through_ms = user, through_ms
        # peers: the replica's (gateway.scoring.livepeers), shared by its views; the stored state is
        # one user's and holds none
        self.agg = Aggregator(listener=self._closed, slot_seconds=slot_seconds, peers=peers)
        self.agg.load_state(state)
        self.rows: dict[str, list[float]] = {d: list(r) for d, r in state.get("rows", {}).items()}
        self.count = 0  # records replayed after through_ms
        self.last_ms = through_ms
        self.per_day: collections.Counter[str] = collections.Counter()
        self.closed: list[str] = []  # days closed in this view, not yet stored
        self.closed_rows: list[tuple[str, str, float, list[float]]] = []  # (day, role, time, row) of those
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_REQUESTS)

    def _closed(self, user: str, w: Window, hist: History, final: bool) -> None:
        if final:
            x = compute(w, hist, self.agg.exported_by_day.get(user))
            self.rows[w.day] = [round(v, 6) for v in x]
            for old in sorted(self.rows)[:-HISTORY_DAYS]:
                del self.rows[old]
            self.closed.append(w.day)
            self.closed_rows.append((w.day, w.role, w.last or 0.0, x))

    def replay(self, members: list[bytes]) -> int:
        """Adds records in the stored order; returns how many could not be counted."""
        bad = 0
        for member in members:
            try:
                record = orjson.loads(member_json(member))
                ms = epoch_ms(record)
                self.agg.add(record)
            except Exception:
                bad += 1
                continue
            self.count += 1
            self.last_ms = max(self.last_ms, ms)
            self.per_day[datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()] += 1
            self.recent.append(
                {
                    k: record.get(k)
                    for k in (
                        "time",
                        "method",
                        "path",
                        "operation",
                        "status",
                        "records_returned",
                        "client_ip",
                        "country",
                    )
                }
            )
        return bad

    @property
    def window(self) -> Window | None:
        return self.agg.windows.get(self.user)

    def features(self) -> list[float] | None:
        w = self.window
        if w is None:
            return None
        return compute(w, self.agg.history[self.user], self.agg.exported_by_day.get(self.user))

    def closable(self, grace_ms: int) -> int | None:
        """through_ms to store now (every day closed in this view is past its end by the grace)."""
        if not self.closed:
            return None
        end = day_end_ms(max(self.closed))
        return end if self.last_ms >= end + grace_ms else None

    def stored(self, through_ms: int) -> list[tuple[str, str, float, list[float]]]:
        """The closed days are stored: forget their records' count (they are gone from the state);
        returns their final rows (day, role, time, row)."""
        for day in [d for d in self.per_day if day_end_ms(d) <= through_ms]:
            self.count -= self.per_day.pop(day)
        rows, self.closed_rows = self.closed_rows, []
        self.closed.clear()
        self.through_ms = through_ms
        return rows

    def state(self) -> bytes:
        return orjson.dumps(user_state(self.agg, self.user, self.rows))


def build_view(
    fetched: Fetched, model_history: dict[str, Any], slot_seconds: int = 900, peers: Peers | None = None
) -> UserView:
    state = orjson.loads(fetched.state) if fetched.state else seed_from(model_history, fetched.user)
    through = fetched.through_ms if fetched.through_ms != NO_DAY else NO_DAY
    return UserView(fetched.user, through, state, slot_seconds, peers)
