"""AlertStore: durable, de-duplicated alerts shared by every gateway instance and the CLI.

This module is the store's public API and lifecycle: raising an alert (de-duplicated into the open
one, rapid repeats coalesced, sinks told), analyst actions, reading, and start/close with the
periodic Redis check. Where each copy is kept is its base class, AlertPersistence
(gateway/alerts/persistence.py): journal then Redis, degraded mode while Redis is down, replay of
the journal when it is back, the health view; ``JournalUnavailable`` is defined there too.

Write path of every change (raise, repeat, analyst action)::

    compute the next copy (lifecycle.py) ─► journal append + fsync ─► Redis PUT script (atomic)
                                                                      └─ lost a race? void it, retry

Read path: Redis while it is up (so every instance sees every alert); otherwise the in-memory view
built from the journal (re-read from its tail, so changes made by the CLI on the same file show up).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import math
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from gateway.alerts import lifecycle
from gateway.alerts.journal import Journal
from gateway.alerts.model import (
    Alert,
    AlertNotFound,
    HistoryEntry,
    InvalidTransition,
    Source,
    dedupe_key,
    iso,
    level_max,
    new_alert_id,
)
from gateway.alerts.persistence import AlertPersistence, to_stderr
from gateway.alerts.persistence import JournalUnavailable as JournalUnavailable  # re-exported: api, console
from gateway.alerts.verdicts import verdict_of
from gateway.alerts.view import alert_filter
from gateway.background import Periodic
from gateway.redishealth import REDIS_ERRORS, RedisHealth

if TYPE_CHECKING:
    from gateway.alerts.sinks import AlertSink
    from gateway.redisconn import RedisClient

log = logging.getLogger("crmgw.alerts")
MAX_ATTEMPTS = 8


class AlertStore(AlertPersistence):
    def __init__(
        self,
        journal: Journal,
        *,
        redis: RedisClient | None = None,
        writer: str = "local",
        clock: Callable[[], datetime] | None = None,
        sinks: Iterable[AlertSink] = (),
        max_occurrences: int = 20,
        check_interval: float = 2.0,
        repeat_min_interval: float = 0.0,
        redis_health: RedisHealth | None = None,
        owns_client: bool = True,
    ):
        super().__init__(
            journal, redis=redis, writer=writer, clock=clock, redis_health=redis_health, owns_client=owns_client
        )
        self.sinks = list(sinks)
        self.max_occurrences = max_occurrences
        self.check_interval = check_interval
        self.repeat_min_interval = repeat_min_interval
        self._last_repeat: dict[str, float] = {}
        self._pending: dict[str, int] = {}  # coalesced repeats not yet written
        self._lock = asyncio.Lock()
        self._checker = Periodic("alerts-redis-check", check_interval, self._check)
        self._closing = False

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self, *, background: bool = True) -> None:
        self.view.refresh()
        await self.check_redis()
        for sink in self.sinks:
            await sink.start()
        if background and self.mirror is not None:
            self._checker.start()

    async def close(self) -> None:
        self._closing = True  # redis-py may turn a cancellation into a ConnectionError: stop by flag too
        await self._checker.stop()
        await self.flush_pending()
        for sink in self.sinks:
            await sink.close()
        if self._redis is not None and self.owns_client:
            await self._redis.aclose()
        self.journal.close()

    async def _check(self) -> None:
        """One tick of the periodic check (gateway.background logs a failure and runs it again)."""
        await self.check_redis()
        await self.flush_pending()
        if self._closing:  # the cancellation may have been turned into a ConnectionError: end here
            raise asyncio.CancelledError

    # --- raising --------------------------------------------------------------------------------
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
        """Record an alert, or add to the open one for (user, type, window); returns its id."""
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

    # --- analyst actions --------------------------------------------------------------------------
    async def transition(
        self,
        alert_id: str,
        *,
        actor: str,
        status: str | None = None,
        assignee: str | None = None,
        note: str | None = None,
    ) -> Alert:
        return await self._change(
            alert_id,
            actor,
            lambda current, stamp: lifecycle.apply_action(
                current, stamp=stamp, actor=actor, status=status, assignee=assignee, note=note
            ),
        )

    async def record_lift(self, alert_id: str, *, actor: str, action: str, rule: str, until: str, note: str) -> Alert:
        """Record in the alert's history that ``actor`` lifted the block/step-up it caused, and why."""
        return await self._change(
            alert_id,
            actor,
            lambda current, stamp: lifecycle.record_lift(
                current, stamp=stamp, actor=actor, action=action, rule=rule, until=until, note=note
            ),
        )

    async def _change(self, alert_id: str, actor: str, compute: Callable[[Alert, str], Alert]) -> Alert:
        async with self._lock:
            for _ in range(MAX_ATTEMPTS):
                current = await self._current(alert_id)
                if current is None:
                    raise AlertNotFound(alert_id)
                updated = compute(current, iso(self.clock()))
                action = updated.history[-1].action if updated.history else "update"
                if await self._commit(updated, op=action, actor=actor, expected=current.rev):
                    return updated
        raise InvalidTransition(f"alert {alert_id} kept changing under this action; try again")

    # --- reading --------------------------------------------------------------------------------
    async def get(self, alert_id: str) -> Alert | None:
        return await self._current(alert_id)

    async def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        level: str | None = None,
        type: str | None = None,
        user: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        statuses, after, before, matches = alert_filter(
            status=status, level=level, type=type, user=user, since=since, until=until
        )
        mirror = self._shared()
        if mirror is not None:
            try:
                return await mirror.list(
                    statuses=statuses,
                    level=level,
                    type=type,
                    user=user,
                    since=after,
                    until=before,
                    limit=limit,
                    matches=matches,
                )
            except REDIS_ERRORS as exc:
                self._redis_down(exc)
        self.view.refresh()
        found = sorted((a for a in self.view.all() if matches(a)), key=lambda a: a.id, reverse=True)
        return found[:limit]

    async def counts(self) -> dict[str, Any]:
        mirror = self._shared()
        if mirror is not None:
            try:
                return await mirror.counts()
            except REDIS_ERRORS as exc:
                self._redis_down(exc)
        self.view.refresh()
        return self.view.counts()

    async def export_verdicts(self) -> builtins.list[dict[str, Any]]:
        """Analyst verdicts on closed alerts, for the next training run (see verdicts.py)."""
        alerts = await self.list(status={"resolved", "false_positive"}, limit=1_000_000)
        return [v for v in (verdict_of(a.to_dict()) for a in alerts) if v is not None]
