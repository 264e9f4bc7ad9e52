"""Whether a Redis takes writes, as last seen by any part of one gateway process.

    ok                a write succeeded last: a counting round trip, the signals' epoch check, an
                      alert's, approval's or access request's put, a store's journal marker
    unreachable       no answer: connection refused, reset, timed out (also the state before the
                      first write: a part is degraded until Redis has taken one)
    refusing-writes   Redis answers but refuses writes: ``OOM command not allowed`` (maxmemory with
                      noeviction), ``READONLY`` (a replica after a failover), ``MISCONF`` (RDB save
                      failing), a script error

Only a successful *write* brings a tracker back to ``ok``. A PING is answered by a Redis that refuses
every write, so a tracker that flipped back on PING would let fail-closed operations (exports,
deletes) through between two failed counting batches and leave them uncounted: that is what was seen
with maxmemory reached (issue 11). Reads that succeed therefore change nothing; a failed read or
write is reported with ``failed(exc)``.

One tracker per Redis URL is shared by the signals stage, the alert store and the approvals and
access-request stores (gateway.redisconn.RedisConnections), so a failure any of them sees is seen by
all. Each part keeps its own health keys and degraded codes and reads its state from here.
``outages`` counts the times the tracker left ``ok``: a store that mirrors a journal into Redis
compares it with the count at its last replay to know it must replay again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.clock import Clock, utc_now

log = logging.getLogger("crmgw.redis")

OK, UNREACHABLE, REFUSING = "ok", "unreachable", "refusing-writes"
NO_ANSWER = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)
# What a call to Redis may raise (the one tuple every part catches; STORAGE_ERRORS is the same).
REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
STORAGE_ERRORS = REDIS_ERRORS

Listener = Callable[[bool], None]  # told ``ok`` whenever it changes, e.g. Metrics.set_redis_up


def classify(exc: BaseException) -> str:
    """UNREACHABLE when Redis did not answer, REFUSING when it answered with an error."""
    if isinstance(exc, NO_ANSWER) or not isinstance(exc, RedisError):
        return UNREACHABLE
    return REFUSING


def describe(exc: BaseException) -> str:
    """How an error is shown in health (``last_error``)."""
    return f"{type(exc).__name__}: {exc}"[:300]


class RedisHealth:
    """ok / unreachable / refusing-writes of one Redis, fed by every part that calls it."""

    def __init__(self, *, ok: bool = False, clock: Clock | None = None, name: str = "Redis"):
        self.state = OK if ok else UNREACHABLE
        self.clock: Clock = clock or utc_now
        self.name = name  # for logs: the URL without its password
        self.last_error: str | None = None
        self.last_write: str | None = None  # ISO time of the last successful write
        self.outages = 0
        self._listeners: list[Listener] = []

    @property
    def ok(self) -> bool:
        return self.state == OK

    @property
    def connected(self) -> bool:
        """Redis answered last time (possibly with a refusal)."""
        return self.state != UNREACHABLE

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def failed(self, exc: BaseException) -> str:
        """A call failed: the new state (UNREACHABLE or REFUSING)."""
        state = classify(exc)
        if state != self.state:
            log.warning("%s %s: %r", self.name, state, exc)
        was_ok = self.state == OK
        self.state = state
        self.last_error = describe(exc)
        if was_ok:
            self.outages += 1
            self._notify()
        return state

    def wrote(self) -> None:
        """A write succeeded: the only proof that Redis works again."""
        changed = self.state != OK
        if changed and self.last_error:
            log.warning("%s takes writes again", self.name)
        self.state = OK
        self.last_write = self.clock().isoformat()
        if changed:
            self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self.ok)
            except Exception:  # an observer (metrics) must never break a Redis caller
                log.exception("redis health listener failed")
