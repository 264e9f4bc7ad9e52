"""AlertIntake: how a raised alert enters the store — de-duplicated into the open one, joined to the
user's open alert of an earlier window, rapid repeats coalesced, sinks told.

It is the middle layer of the store: AlertPersistence (persistence.py: journal, Redis, degraded
mode) below, AlertStore (store.py: start/close, analyst actions, reads) above. A raise becomes::

    an OPEN alert for (user, type, window)?        ─► repeat: count + 1, evidence kept as an occurrence
    else an OPEN alert of (user, type) raised less
    than join_days ago, type in join_types?        ─► that window already joined: a repeat of it
                                                      else recur: a ``recurred`` entry, recurrences + 1
    else                                           ─► a new alert (a new item in the queue)

Why join: the detector scores user-days, so the days after an incident ("echo" days, when the
user's behaviour is still off) would each open an alert of their own for what an analyst sees as
one case. A closed alert (resolved, false positive) is never joined: its verdict stands and the
next alert is a new one. Threshold rules need no join: their window is the rule's timespan, the
same on every crossing, so the open alert already takes the repeats.

Every step is a compare-and-set on the alert's ``rev`` in Redis (the PUT script), so two gateway
instances raising for the same user at once end with one alert: the loser of a race recomputes on
the winner's copy (and then finds its window joined, so it counts as a repeat, not a second
recurrence).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from gateway.alerts import lifecycle
from gateway.alerts.journal import Journal
from gateway.alerts.model import OPEN_STATUSES, Alert, HistoryEntry, Source, dedupe_key, iso, level_max, new_alert_id
from gateway.alerts.persistence import AlertPersistence, to_stderr
from gateway.alerts.view import alert_filter
from gateway.redishealth import REDIS_ERRORS, RedisHealth

if TYPE_CHECKING:
    from gateway.alerts.sinks import AlertSink
    from gateway.redisconn import RedisClient

log = logging.getLogger("crmgw.alerts")
MAX_ATTEMPTS = 8
JOIN_TYPES = ("detector-anomaly",)  # the default of alerts.join_types (gateway/alerts/config.py)


class AlertIntake(AlertPersistence):
    def __init__(
        self,
        journal: Journal,
        *,
        redis: RedisClient | None,
        writer: str,
        clock: Callable[[], datetime] | None,
        redis_health: RedisHealth | None,
        owns_client: bool,
        sinks: Iterable[AlertSink],
        max_occurrences: int,
        repeat_min_interval: float,
        join_days: float,
        join_types: Iterable[str],
    ):
        super().__init__(
            journal, redis=redis, writer=writer, clock=clock, redis_health=redis_health, owns_client=owns_client
        )
        self.sinks = list(sinks)
        self.max_occurrences = max_occurrences
        self.repeat_min_interval = repeat_min_interval
        self.join_window = timedelta(days=join_days)  # 0: never join
        self.join_types = frozenset(join_types)
        self._last_repeat: dict[str, float] = {}
        self._pending: dict[str, int] = {}  # coalesced repeats not yet written
        self._lock = asyncio.Lock()  # one change at a time in this process; Redis CAS across processes

    async def raise_alert(
        self,
        *,
        user: str,
        type: str,
        level: str,
        score: float,
        summary: str,
        evidence: dict[str, Any],
        rule: str | None,
        window: str,
        source: str = "threshold",
    ) -> str | None:
        """Record an alert, or add it to the open one it repeats or joins; returns its id."""
        checked = lifecycle.check_level(level)
        if not math.isfinite(score):  # NaN/inf do not survive JSON; the alert itself must
            log.warning("alert %s/%s: score %r recorded as 0", user, type, score)
            score = 0.0
        now = self.clock()
        stamp = iso(now)
        evidence = lifecycle.bound_evidence(evidence or {})
        key = dedupe_key(user, type, window)
        async with self._lock:
            for _ in range(MAX_ATTEMPTS):
                existing = await self._find_open(key)
                if existing is None and type in self.join_types and self.join_window:
                    existing = await self._find_joinable(user, type, now)
                    if existing is not None and window not in existing.all_windows:
                        joined = lifecycle.recur(
                            existing,
                            stamp=stamp,
                            actor=source,
                            window=window,
                            level=checked,
                            score=score,
                            summary=summary,
                            evidence=evidence,
                            max_occurrences=self.max_occurrences,
                        )
                        if await self._commit(joined, op="recurred", actor=source, expected=existing.rev, raising=True):
                            escalated = joined.level != existing.level
                            self._notify("alert.escalated" if escalated else "alert.recurred", joined)
                            return joined.id
                        continue  # lost a race (another raise, an analyst closing it): look again
                if existing is not None:
                    escalates = level_max(existing.level, checked) != existing.level
                    if (
                        not escalates
                        and time.monotonic() - self._last_repeat.get(existing.id, -1e9) < self.repeat_min_interval
                    ):
                        self._pending[existing.id] = self._pending.get(existing.id, 0) + 1
                        return existing.id
                    extra = self._pending.pop(existing.id, 0)
                    updated = lifecycle.repeat(
                        existing,
                        stamp=stamp,
                        level=checked,
                        score=score,
                        summary=summary,
                        evidence=evidence,
                        max_occurrences=self.max_occurrences,
                        extra=extra,
                        window=window,
                    )
                    if await self._commit(updated, op="repeated", actor=source, expected=existing.rev, raising=True):
                        self._last_repeat[updated.id] = time.monotonic()
                        if escalates:
                            self._notify("alert.escalated", updated)
                        return updated.id
                    self._pending[existing.id] = self._pending.get(existing.id, 0) + extra
                    continue
                alert = Alert(
                    id=new_alert_id(now),
                    time=stamp,
                    user=user,
                    type=type,
                    level=checked,
                    score=score,
                    summary=summary,
                    evidence=evidence,
                    rule=rule,
                    window=window,
                    source=cast(Source, source),  # checked by the model: a bad source raises ValidationError
                    history=[HistoryEntry(time=stamp, actor=source, action="raised", to="open")],
                    last_seen=stamp,
                    updated_at=stamp,
                )
                if await self._commit(alert, op="raised", actor=source, mode="create", raising=True):
                    self._notify("alert.raised", alert)
                    return alert.id
        self.lost += 1
        log.error("alert for %s/%s/%s not recorded after %d conflicting attempts", user, type, window, MAX_ATTEMPTS)
        to_stderr(
            "ALERT-UNRECORDED", {"user": user, "type": type, "level": level, "summary": summary, "window": window}
        )
        return None

    async def _find_joinable(self, user: str, type: str, now: datetime) -> Alert | None:
        """The newest OPEN alert of ``user`` and ``type`` first raised within the join window."""
        _, after, _, matches = alert_filter(
            status=OPEN_STATUSES, level=None, type=type, user=user, since=now - self.join_window, until=None
        )
        mirror = self._shared()
        if mirror is not None:
            try:
                found = await mirror.list(
                    statuses=set(OPEN_STATUSES),
                    level=None,
                    type=type,
                    user=user,
                    since=after,
                    until=None,
                    limit=1,
                    matches=matches,
                )
                if found:
                    return found[0]
                local = self._newest_local(matches)
                if local is not None and await mirror.get(local.id) is None:  # Redis lost it: refill first
                    await self._replay(mirror)
                    again = await mirror.get(local.id)
                    return again if again is not None and matches(again) else None
                return None
            except REDIS_ERRORS as exc:
                self._redis_down(exc)
        return self._newest_local(matches)

    def _newest_local(self, matches: Callable[[Alert], bool]) -> Alert | None:
        self.view.refresh()
        return max((a for a in self.view.all() if matches(a)), key=lambda a: a.id, default=None)

    async def flush_pending(self) -> None:
        """Write the counts of repeats coalesced by ``repeat_min_interval``."""
        async with self._lock:
            for alert_id in list(self._pending):
                current = await self._current(alert_id)
                extra = self._pending.pop(alert_id)
                if current is None or not current.is_open or not extra:
                    continue
                stamp = iso(self.clock())
                updated = lifecycle.repeat(
                    current,
                    stamp=stamp,
                    level=current.level,
                    score=current.score,
                    summary=current.summary,
                    evidence=None,
                    max_occurrences=self.max_occurrences,
                    extra=extra,
                )
                if not await self._commit(updated, op="repeated", actor="gateway", expected=current.rev, raising=True):
                    self._pending[alert_id] = self._pending.get(alert_id, 0) + extra

    def _notify(self, event: str, alert: Alert) -> None:
        payload = alert.to_dict()
        for sink in self.sinks:
            try:
                sink.submit(event, payload)
            except Exception:  # a sink must never break the request path
                log.exception("alerts: sink %r failed to accept alert %s", sink, alert.id)
