"""SharedStore: versioned records kept durable and shared, journal first then Redis: the mechanism
behind approvals (gateway/approvals/store.py, ApprovalStore) and access requests (gateway.access),
each under its own journal file and Redis prefix. Subclasses add their operations on top of
``_commit`` / ``change`` / ``create``.

Write path of every change::

    compute the next copy (model.py) ─► journal append + fsync ─► Redis script (atomic create / CAS)
                                                                  └─ lost a race? void it, re-read

The journal is the alerts' own class (gateway.alerts.journal.Journal: O_APPEND, fsync, torn-line
safe, ``put``/``void`` records), holding ``{"op": "put", "<key>": {...}}`` lines in its own file;
its in-memory view is gateway/approvals/view.py, the Redis side gateway/approvals/mirror.py.

Without Redis configured the store is one process's (journal + memory under a lock). With Redis
configured but unreachable, changes refuse (``self.unavailable``, a StoreUnavailable: 503) instead
of guessing; reads fall back to the journal. A Redis that lost this writer's data (restart,
FLUSHALL: the marker key is gone) is refilled from the journal before the next change and by a
periodic check.

In the gateway, "unreachable" is the process's tracker for this Redis URL (gateway/redishealth.py),
shared with the alert store and the signals stage (``share_connection``): a failure any of them sees
makes the next change here check Redis first, and the store is up again only after that check wrote
its journal marker (a Redis refusing writes keeps refusing changes here, as before).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from gateway.alerts.journal import Journal
from gateway.alerts.model import iso
from gateway.approvals.mirror import ApprovalMirror
from gateway.approvals.model import Versioned
from gateway.approvals.view import LocalView
from gateway.background import Periodic
from gateway.redishealth import REDIS_ERRORS, RedisHealth

if TYPE_CHECKING:
    from gateway.redisconn import RedisClient

log = logging.getLogger("crmgw.approvals")
R = TypeVar("R", bound=Versioned)
# compute(current, now) -> the next copy, or None when there is nothing to do (SharedStore.change)
Compute = Callable[[R, datetime], R | None]
MAX_ATTEMPTS = 8


class StoreUnavailable(Exception):
    """The shared store or the journal cannot be used: refuse rather than guess (503)."""


class SharedStore(Generic[R]):
    """Versioned records (gateway.approvals.model.Versioned: a pydantic model with ``id``, ``rev``,
    ``status``, ``fingerprint``, ``epoch``, ``expires_at``, ``to_dict()``), journal first then Redis:
    the mechanism behind approvals and access requests (gateway.access). Subclasses set the class
    attributes and add their own operations on top of ``_commit`` / ``change``."""

    model: type[R]
    key: str  # the journal record's key and the name in messages
    prefix: str  # the Redis keys (gateway.approvals.mirror)
    unavailable: type[StoreUnavailable]

    def __init__(
        self,
        journal: Journal,
        *,
        redis: RedisClient | None = None,
        writer: str = "local",
        clock: Callable[[], datetime] | None = None,
        check_interval: float = 2.0,
    ):
        self.journal = journal
        self.writer = writer
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.check_interval = check_interval
        self._redis = redis
        self.owns_client = True  # False: gateway.redisconn.RedisConnections closes it (share_connection)
        self.mirror: ApprovalMirror[R] | None = (
            ApprovalMirror(redis, writer, prefix=self.prefix, model=self.model) if redis is not None else None
        )
        self.redis_health = RedisHealth(clock=self.clock, name=f"{self.key}: Redis")
        self._synced: int | None = None  # redis_health.outages at the last replay (None: never)
        self.view: LocalView[R] = LocalView(journal, self.model, self.key)
        self._lock = asyncio.Lock()
        self._checker = Periodic(f"{self.key}-redis-check", check_interval, self._check)
        self._closing = False
        self.last_redis_error: str | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    def share_connection(self, health: RedisHealth) -> None:
        """The client given is the gateway process's (gateway.redisconn.RedisConnections): report to
        its tracker for this URL, and leave closing the client to it. Called before ``start``."""
        self.redis_health = health
        self.owns_client = False

    async def start(self, *, background: bool = True) -> None:
        self.view.refresh()
        await self.check_redis()
        if background and self.mirror is not None:
            self._checker.start()

    async def close(self) -> None:
        self._closing = True
        await self._checker.stop()
        if self._redis is not None and self.owns_client:
            await self._redis.aclose()
        self.journal.close()

    async def _check(self) -> None:
        """One tick of the periodic check (gateway.background logs a failure and runs it again)."""
        await self.check_redis()
        if self._closing:  # redis-py may turn the cancellation into a ConnectionError: the flag ends it too
            raise asyncio.CancelledError

    async def check_redis(self) -> bool:
        """Is Redis usable? Replays the journal when Redis came back or lost this writer's data."""
        if self.mirror is None:
            return False
        try:
            if not await self.mirror.probe() or not self.redis_up:  # the probe is a read: proves nothing
                outages = self.redis_health.outages  # one during the replay: replay again next time
                self.view.refresh()
                for record in self.view.all():
                    await self.mirror.put(record, mode="replay")
                await self.mirror.set_marker(iso(self.clock()))
                self.redis_health.wrote()
                self._synced = outages
        except REDIS_ERRORS as exc:
            self._down(exc)
            return False
        return self.redis_up

    @property
    def redis_up(self) -> bool:
        """Redis takes writes (the shared tracker) and this store's journal is in it since the last
        outage."""
        return self.mirror is not None and self.redis_health.ok and self._synced == self.redis_health.outages

    def _down(self, exc: BaseException) -> None:
        was_up = self.redis_up
        self.last_redis_error = f"{type(exc).__name__}: {exc}"
        self.redis_health.failed(exc)
        if was_up:
            log.error("%s: Redis unavailable (%s)", self.key, self.last_redis_error)

    async def _shared(self) -> None:
        """Before a change: Redis (when configured) must be there, with this writer's journal in it."""
        if self.mirror is not None and not await self.check_redis():
            raise self.unavailable(
                f"{self.key}: the shared store (Redis) is unavailable: {self.last_redis_error or self.redis_health.last_error}"
            )

    async def change(self, record_id: str, compute: Compute[R]) -> R:
        """Apply ``compute(current, now) -> next copy`` (it raises to refuse; None: nothing to do,
        the current copy is returned) with a compare-and-set, re-reading on a lost race. Raises
        LookupError for an unknown id, or ``self.unavailable``."""
        async with self._lock:
            await self._shared()
            for _ in range(MAX_ATTEMPTS):
                now = self.clock()
                current = await self._get(record_id)
                if current is None:
                    raise LookupError(record_id)
                updated = compute(current, now)
                if updated is None:
                    return current
                if await self._commit(updated, expected=current.rev, now=now):
                    return updated
        raise self.unavailable(f"{self.key} {record_id} kept changing; try again")

    async def create(self, record: R) -> R:
        async with self._lock:
            await self._shared()
            if not await self._commit(record, mode="create", now=self.clock()):
                raise self.unavailable(f"{self.key} {record.id} could not be created")
            return record

    # --- reading --------------------------------------------------------------------------------
    async def get(self, approval_id: str) -> R | None:
        if self.mirror is not None and self.redis_up:
            try:
                return await self._get(approval_id)
            except REDIS_ERRORS as exc:
                self._down(exc)
        self.view.refresh()
        return self.view.latest(approval_id)

    async def list(self, *, status: set[str] | None = None, limit: int = 200) -> list[R]:
        """Newest first (``status`` filters on the stored status; lapsed ones show via ``expired(now)``)."""
        found: list[R] | None = None
        if self.mirror is not None and self.redis_up:
            try:
                found = await self.mirror.newest(max(limit * 4, 1000))
            except REDIS_ERRORS as exc:
                self._down(exc)
        if found is None:
            self.view.refresh()
            found = sorted(self.view.all(), key=lambda a: a.id, reverse=True)
        return [a for a in found if not status or a.status in status][:limit]

    # --- internals ----------------------------------------------------------------------------
    async def _get(self, approval_id: str) -> R | None:
        if self.mirror is not None:
            return await self.mirror.get(approval_id)
        self.view.refresh()
        return self.view.latest(approval_id)

    async def _for_fp(self, fp: str) -> R | None:
        if self.mirror is not None:
            return await self.mirror.for_fingerprint(fp)
        self.view.refresh()
        found = self.view.by_fp.get(fp)
        return self.view.latest(found) if found else None

    async def _commit(self, approval: R, *, mode: str = "cas", expected: int = 0, now: datetime) -> bool:
        """Journal (fsync) then Redis; False when Redis refused (a race: the caller re-reads).

        A Redis failure during the write keeps the journalled copy (a replay writes it later): for a
        use, that errs towards an approval spent without its request forwarded, never a second use."""
        if self.mirror is None and not self._local_ok(approval, mode, expected, now):
            return False
        event = uuid.uuid4().hex
        record: dict[str, Any] = {"op": "put", "event": event, "writer": self.writer, self.key: approval.to_dict()}
        try:
            await asyncio.to_thread(self.journal.append, record)
        except OSError as exc:
            raise self.unavailable(f"{self.key} journal {self.journal.path} is not writable: {exc}") from exc
        if self.mirror is not None:
            try:
                status, _ = await self.mirror.put(approval, mode=mode, expected_rev=expected, now=now.timestamp())
            except REDIS_ERRORS as exc:
                self._down(exc)
                raise self.unavailable(f"{self.key}: Redis failed during a change: {exc}") from exc
            if status != "ok":
                await self._void(event, approval.id)
                return False
            self.redis_health.wrote()
        self.view.remember(approval, event)
        return True

    def _local_ok(self, approval: R, mode: str, expected: int, now: datetime) -> bool:
        """Without Redis (one process, or the CLI on the same journal): the same checks as the script."""
        self.view.refresh()
        if mode == "create":
            held_id = self.view.by_fp.get(approval.fingerprint)
            held = self.view.latest(held_id) if held_id and held_id != approval.id else None
            return held is None or not held.standing(now)
        current = self.view.latest(approval.id)
        return (current.rev if current is not None else 0) == expected

    async def _void(self, event: str, approval_id: str) -> None:
        try:
            await asyncio.to_thread(
                self.journal.append, {"op": "void", "event": event, "writer": self.writer, "id": approval_id}
            )
        except OSError as exc:
            log.error("%s journal: could not void a superseded copy of %s: %s", self.key, approval_id, exc)
