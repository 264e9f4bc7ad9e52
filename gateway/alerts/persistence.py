"""AlertPersistence: where the alert store keeps each copy of an alert, and what it does while Redis
is down. It is the base class of AlertStore (gateway/alerts/store.py), which computes the copies.

    _commit            journal append + fsync, then the Redis PUT script; False: lost a race
    _current/_find_open  read from Redis while it is up, else from the journal's in-memory view
    check_redis        is Redis usable? replays the journal when it came back or lost our data
    health             the store's health view (Redis, journal, counters, sinks)

Redis down: the store says ``degraded``, keeps accepting alerts (journal + memory, de-duplicated
locally) and serves reads from memory. "Down" is the process's tracker for this Redis URL
(gateway/redishealth.py), shared with the signals stage and the other stores: a failure any of them
sees sends the alerts to the journal too, and only a write brings the tracker back. The store is up
again once the tracker is ok *and* it replayed its journal since the tracker's last outage, so
alerts journalled meanwhile always reach Redis; a Redis that refuses writes keeps the store on the
journal (it still accepts alerts). A background check (and ``check_redis()``) notices Redis
coming back, or coming back empty after a restart or FLUSHALL (this writer's marker key is gone),
and replays the journal; replay only writes copies newer than Redis's, so it is always safe.

No alert is lost silently: a journal that cannot be written turns health degraded, each unjournalled
alert goes to stderr (``ALERT-UNJOURNALLED {json}``) and is counted; analyst actions are refused
(``JournalUnavailable``, 503) rather than applied without a durable record.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from gateway.alerts.journal import Journal
from gateway.alerts.model import Alert, iso
from gateway.alerts.redis_mirror import RedisMirror
from gateway.alerts.view import LocalView
from gateway.redishealth import REDIS_ERRORS, RedisHealth

if TYPE_CHECKING:
    from gateway.alerts.sinks import AlertSink
    from gateway.redisconn import RedisClient

log = logging.getLogger("crmgw.alerts")


class JournalUnavailable(Exception):
    """The journal cannot be written, so an analyst action is refused (API: 503)."""


class AlertPersistence:
    """The journal, its in-memory view and the Redis mirror of one store, with the counters that
    say what reached them. A base class rather than a member object so that ``store.redis_up``,
    ``store.check_redis()``, ``store.health()``, ``store.journal`` ... stay where callers read them."""

    sinks: list[AlertSink]  # AlertStore's (set in its __init__): their health is part of the store's

    def __init__(
        self,
        journal: Journal,
        *,
        redis: RedisClient | None,
        writer: str,
        clock: Callable[[], datetime] | None,
        redis_health: RedisHealth | None,
        owns_client: bool,
    ):
        self.journal = journal
        self.writer = writer
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._redis = redis
        self.owns_client = owns_client  # False: gateway.redisconn.RedisConnections closes the client
        self.mirror = RedisMirror(redis, writer) if redis is not None else None
        # the process's tracker for this Redis when given (the gateway), else the store's own
        self.redis_health = redis_health or RedisHealth(clock=self.clock, name="alerts: Redis")
        self._synced: int | None = None  # redis_health.outages at the last replay (None: never)
        self.view = LocalView(journal)
        self.unjournalled = 0
        self.lost = 0
        self.replays = 0
        self.last_replay: str | None = None
        self.redis_errors = 0
        self.last_redis_error: str | None = None

    # --- Redis: up, down, replay ------------------------------------------------------------------
    async def check_redis(self) -> bool:
        """Is Redis usable? Replays the journal when Redis came back or lost this writer's data."""
        if self.mirror is None:
            return False
        was_up = self.redis_up
        try:
            in_redis = await self.mirror.probe()  # a read: proves nothing about writes
            if not was_up or not in_redis:
                outages = self.redis_health.outages  # one during the replay: replay again next time
                await self._replay(self.mirror)
                await self.mirror.set_marker(iso(self.clock()))
                self.redis_health.wrote()
                self._synced = outages
        except REDIS_ERRORS as exc:
            self._redis_down(exc)
            return False
        if not was_up and self.redis_up and self.redis_errors:
            log.warning("alerts: Redis is back; journal replayed (%s)", self.last_replay)
        return self.redis_up

    @property
    def redis_up(self) -> bool:
        """Redis takes writes (the shared tracker) and this store's journal is in it since the last
        outage: reads and writes go to Redis; otherwise to the journal and memory."""
        return self.mirror is not None and self.redis_health.ok and self._synced == self.redis_health.outages

    async def _replay(self, mirror: RedisMirror) -> None:
        self.view.refresh()
        written = 0
        for alert in list(self.view.all()):
            status, _ = await mirror.put(alert, mode="replay", op="replayed", actor="journal")
            written += status == "ok"
        self.replays += 1
        self.last_replay = f"{iso(self.clock())}: {written} alert copies written"

    def _redis_down(self, exc: BaseException) -> None:
        was_up = self.redis_up
        self.redis_errors += 1
        self.last_redis_error = f"{type(exc).__name__}: {exc}"
        self.redis_health.failed(exc)
        if was_up:
            log.error("alerts: Redis unavailable (%s); serving from the journal", self.last_redis_error)

    def _shared(self) -> RedisMirror | None:
        """The Redis mirror while Redis is usable; None: the journal and memory serve."""
        return self.mirror if self.redis_up else None

    # --- reading one alert ------------------------------------------------------------------------
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

    # --- writing one copy -------------------------------------------------------------------------
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
            to_stderr("ALERT-UNJOURNALLED", record)
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
                self.redis_health.wrote()
        self.view.remember(alert, event)
        return True

    async def _void(self, event: str, alert_id: str) -> None:
        try:
            await asyncio.to_thread(
                self.journal.append, {"op": "void", "event": event, "writer": self.writer, "id": alert_id}
            )
        except OSError as exc:  # the copy stays in the journal; replay only writes it if it is newest
            log.error("alerts journal: could not void a superseded copy of %s: %s", alert_id, exc)

    # --- health -----------------------------------------------------------------------------------
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
            # this store's last error, else the one another part saw on the shared tracker
            "last_redis_error": self.last_redis_error or self.redis_health.last_error,
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


def to_stderr(tag: str, record: dict[str, Any]) -> None:
    """The last resort for an alert no journal holds: one ``TAG {json}`` line on stderr."""
    try:
        sys.stderr.buffer.write(tag.encode() + b" " + orjson.dumps(record, default=str) + b"\n")
        sys.stderr.flush()
    except Exception:  # stderr gone too: the counters are all that is left
        pass
