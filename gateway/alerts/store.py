"""AlertStore: durable, de-duplicated alerts shared by every gateway instance and the CLI.

This module is the store's public API: start/close with the periodic Redis check, analyst actions
and reading. Its base classes do the rest: AlertIntake (gateway/alerts/intake.py) raises alerts —
de-duplicated into the open one, joined to the user's open alert of an earlier window, rapid
repeats coalesced, sinks told — and AlertPersistence (gateway/alerts/persistence.py) keeps each
copy: journal then Redis, degraded mode while Redis is down, replay of the journal when it is
back, the health view; ``JournalUnavailable`` is defined there too.

Write path of every change (raise, repeat, analyst action)::

    compute the next copy (lifecycle.py) ─► journal append + fsync ─► Redis PUT script (atomic)
                                                                      └─ lost a race? void it, retry

Read path: Redis while it is up (so every instance sees every alert); otherwise the in-memory view
built from the journal (re-read from its tail, so changes made by the CLI on the same file show up).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.alerts import lifecycle
from gateway.alerts.intake import JOIN_TYPES, MAX_ATTEMPTS, AlertIntake
from gateway.alerts.journal import Journal
from gateway.alerts.model import Alert, AlertNotFound, InvalidTransition, iso
from gateway.alerts.persistence import JournalUnavailable as JournalUnavailable  # re-exported: api, console
from gateway.alerts.verdicts import verdicts_of
from gateway.alerts.view import alert_filter
from gateway.background import Periodic
from gateway.redishealth import REDIS_ERRORS, RedisHealth

if TYPE_CHECKING:
    from gateway.alerts.sinks import AlertSink
    from gateway.redisconn import RedisClient


class AlertStore(AlertIntake):
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
        join_days: float = 7.0,
        join_types: Iterable[str] = JOIN_TYPES,
    ):
        super().__init__(
            journal,
            redis=redis,
            writer=writer,
            clock=clock,
            redis_health=redis_health,
            owns_client=owns_client,
            sinks=sinks,
            max_occurrences=max_occurrences,
            repeat_min_interval=repeat_min_interval,
            join_days=join_days,
            join_types=join_types,
        )
        self.check_interval = check_interval
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

    # --- analyst actions --------------------------------------------------------------------------
    async def transition(
        self,
        alert_id: str,
        *,
        actor: str,
        status: str | None = None,
        assignee: str | None = None,
        note: str | None = None,
        verdict: str | None = None,
        determination: str | None = None,
    ) -> Alert:
        return await self._change(
            alert_id,
            actor,
            lambda current, stamp: lifecycle.apply_action(
                current,
                stamp=stamp,
                actor=actor,
                status=status,
                assignee=assignee,
                note=note,
                verdict=verdict,
                determination=determination,
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

    async def record_governance(self, alert_id: str, *, actor: str, action: str, to: str | None, note: str) -> Alert:
        """Record a governance action taken from this alert (gateway/governance/actions.py)."""
        return await self._change(
            alert_id,
            actor,
            lambda current, stamp: lifecycle.record_governance(
                current, stamp=stamp, actor=actor, action=action, to=to, note=note
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
        return [v for a in alerts for v in verdicts_of(a.to_dict())]
