"""AlertStore: durable, de-duplicated alerts shared by every gateway instance and the CLI.

Write path of every change (raise, repeat, analyst action)::

    compute the next copy (lifecycle.py) ─► journal append + fsync ─► Redis PUT script (atomic)
                                                                      └─ lost a race? void it, retry

Read path: Redis while it is up (so every instance sees every alert); otherwise the in-memory view
built from the journal (re-read from its tail, so changes made by the CLI on the same file show up).

Redis down: the store says ``degraded``, keeps accepting alerts (journal + memory, de-duplicated
locally) and serves reads from memory. A background check (and ``check_redis()``) notices Redis
coming back, or coming back empty after a restart or FLUSHALL (this writer's marker key is gone),
and replays the journal; replay only writes copies newer than Redis's, so it is always safe.

No alert is lost silently: a journal that cannot be written turns health degraded, each unjournalled
alert goes to stderr (``ALERT-UNJOURNALLED {json}``) and is counted; analyst actions are refused
(``JournalUnavailable``, 503) rather than applied without a durable record.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import math
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import orjson
from redis.exceptions import RedisError

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
from gateway.alerts.redis_mirror import RedisMirror
from gateway.alerts.verdicts import verdict_of
from gateway.alerts.view import LocalView, alert_filter
from gateway.background import Periodic

if TYPE_CHECKING:
    from gateway.alerts.sinks import AlertSink
    from gateway.redisconn import RedisClient

log = logging.getLogger("crmgw.alerts")
REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
MAX_ATTEMPTS = 8


class JournalUnavailable(Exception):
    """The journal cannot be written, so an analyst action is refused (API: 503)."""


class AlertStore:
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
    ):
        self.journal = journal
        self.writer = writer
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.sinks = list(sinks)
        self.max_occurrences = max_occurrences
        self.check_interval = check_interval
        self.repeat_min_interval = repeat_min_interval
        self._redis = redis
        self.mirror = RedisMirror(redis, writer) if redis is not None else None
        self.redis_up = False
        self.view = LocalView(journal)
        self._last_repeat: dict[str, float] = {}
        self._pending: dict[str, int] = {}  # coalesced repeats not yet written
        self._lock = asyncio.Lock()
        self._checker = Periodic("alerts-redis-check", check_interval, self._check)
        self._closing = False
        self.unjournalled = 0
        self.lost = 0
        self.replays = 0
        self.last_replay: str | None = None
        self.redis_errors = 0
        self.last_redis_error: str | None = None

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
        if self._redis is not None:
            await self._redis.aclose()
        self.journal.close()

    async def _check(self) -> None:
        """One tick of the periodic check (gateway.background logs a failure and runs it again)."""
        await self.check_redis()
        await self.flush_pending()
        if self._closing:  # the cancellation may have been turned into a ConnectionError: end here
            raise asyncio.CancelledError

    async def check_redis(self) -> bool:
        """Is Redis usable? Replays the journal when Redis came back or lost this writer's data."""
        if self.mirror is None:
            return False
        try:
            in_redis = await self.mirror.probe()
            if not self.redis_up or not in_redis:
                await self._replay(self.mirror)
                await self.mirror.set_marker(iso(self.clock()))
        except REDIS_ERRORS as exc:
            self._redis_down(exc)
            return False
        if not self.redis_up and self.redis_errors:
            log.warning("alerts: Redis is back; journal replayed (%s)", self.last_replay)
        self.redis_up = True
        return True

    async def _replay(self, mirror: RedisMirror) -> None:
        self.view.refresh()
        written = 0
        for alert in list(self.view.all()):
            status, _ = await mirror.put(alert, mode="replay", op="replayed", actor="journal")
            written += status == "ok"
        self.replays += 1
        self.last_replay = f"{iso(self.clock())}: {written} alert copies written"

    def _redis_down(self, exc: BaseException) -> None:
        self.redis_errors += 1
        self.last_redis_error = f"{type(exc).__name__}: {exc}"
        if self.redis_up:
            log.error("alerts: Redis unavailable (%s); serving from the journal", self.last_redis_error)
        self.redis_up = False

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
        _stderr("ALERT-UNRECORDED", {"user": user, "type": type, "level": level, "summary": summary, "window": window})
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

    def health(self) -> dict[str, Any]:
        degraded = []
        if self.mirror is not None and not self.redis_up:
            degraded.append("alerts-redis-unavailable")
        if not self.journal.healthy:
            degraded.append("alerts-journal-unwritable")
        return {
            "status": "degraded" if degraded else "ok",
            "degraded": degraded,
            "backend": "redis+journal" if self.mirror is not None else "journal",
            "redis": "not-configured" if self.mirror is None else ("ok" if self.redis_up else "unavailable"),
            "last_redis_error": self.last_redis_error,
            "journal": {
                "path": str(self.journal.path),
                "healthy": self.journal.healthy,
                "written": self.journal.written,
                "failed": self.journal.failed,
                "corrupt_lines": self.journal.corrupt_lines,
            },
            "unjournalled_alerts": self.unjournalled,
            "lost_alerts": self.lost,
            "replays": self.replays,
            "last_replay": self.last_replay,
            "alerts_in_memory": len(self.view),
            "sinks": [s.health() for s in self.sinks],
        }

    # --- internals ----------------------------------------------------------------------------
    def _shared(self) -> RedisMirror | None:
        """The Redis mirror while Redis is usable; None: the journal and memory serve."""
        return self.mirror if self.redis_up else None

    async def _find_open(self, key: str) -> Alert | None:
        mirror = self._shared()
        if mirror is not None:
            try:
                alert = await mirror.open_alert(key)
                if alert is not None:
                    self.view.remember(alert, None)
                    return alert
                local_id = self.view.open.get(key)
                if local_id is None:
                    return None
                if await mirror.get(local_id) is None:  # Redis lost it (restart/flush): refill first
                    await self._replay(mirror)
                    return await mirror.open_alert(key)
                return None
            except REDIS_ERRORS as exc:
                self._redis_down(exc)
        self.view.refresh()
        return self.view.open_alert(key)

    async def _current(self, alert_id: str) -> Alert | None:
        mirror = self._shared()
        if mirror is not None:
            try:
                alert = await mirror.get(alert_id)
                if alert is None and self.view.latest(alert_id) is not None:
                    await self._replay(mirror)
                    alert = await mirror.get(alert_id)
                if alert is not None:
                    self.view.remember(alert, None)
                return alert
            except REDIS_ERRORS as exc:
                self._redis_down(exc)
        self.view.refresh()
        return self.view.latest(alert_id)

    async def _commit(
        self, alert: Alert, *, op: str, actor: str, mode: str = "cas", expected: int = 0, raising: bool = False
    ) -> bool:
        """Journal then Redis; False when Redis refused (a race: the caller recomputes and retries)."""
        event = uuid.uuid4().hex
        record: dict[str, Any] = {"op": "put", "event": event, "writer": self.writer, "alert": alert.to_dict()}
        try:
            await asyncio.to_thread(self.journal.append, record)
        except OSError as exc:
            if not raising:
                raise JournalUnavailable(f"alerts journal {self.journal.path} is not writable: {exc}") from exc
            self.unjournalled += 1
            log.error("alerts journal not writable (%s): alert %s kept on stderr", exc, alert.id)
            _stderr("ALERT-UNJOURNALLED", record)
        mirror = self._shared()
        if mirror is not None:
            try:
                status, _ = await mirror.put(alert, mode=mode, op=op, actor=actor, expected_rev=expected)
            except REDIS_ERRORS as exc:
                self._redis_down(exc)
            else:
                if status != "ok":
                    await self._void(event, alert.id)
                    return False
        self.view.remember(alert, event)
        return True

    async def _void(self, event: str, alert_id: str) -> None:
        try:
            await asyncio.to_thread(
                self.journal.append, {"op": "void", "event": event, "writer": self.writer, "id": alert_id}
            )
        except OSError as exc:  # the copy stays in the journal; replay only writes it if it is newest
            log.error("alerts journal: could not void a superseded copy of %s: %s", alert_id, exc)


def _stderr(tag: str, record: dict[str, Any]) -> None:
    try:
        sys.stderr.buffer.write(tag.encode() + b" " + orjson.dumps(record, default=str) + b"\n")
        sys.stderr.flush()
    except Exception:  # stderr gone too: the counters are all that is left
        pass
