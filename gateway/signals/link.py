"""Whether the shared store takes counter writes, as last seen by any background task.

    ok                a write in the signals keyspace succeeded last (a counting round trip, or the
                      supervisor's epoch check, which is a write)
    unreachable       no answer: connection refused, reset, timed out
    refusing-writes   Redis answers but refuses writes: ``OOM command not allowed`` (maxmemory with
                      noeviction), ``READONLY`` (a replica after a failover), ``MISCONF`` (RDB save
                      failing), a script error

Only a successful *write* brings the link back to ``ok``. A PING is answered by a Redis that refuses
every write, so a link that flipped back on PING would let fail-closed operations (exports, deletes)
through between two failed counting batches and leave them uncounted: that is what was seen with
maxmemory reached (issue 11). Both bad states are "degraded": counting is dropped (and counted as
dropped) and operations whose fail mode is ``closed`` are refused 503 ``signals-unavailable``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.clock import Clock

log = logging.getLogger("crmgw.signals")

OK, UNREACHABLE, REFUSING = "ok", "unreachable", "refusing-writes"
# the names /_gw/health lists under "degraded" (the first is the one issue 3 introduced)
PROBLEMS = {UNREACHABLE: "signals-redis-unavailable", REFUSING: "signals-redis-refusing-writes"}
NO_ANSWER = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)
STORAGE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)  # what a call to the shared store may raise


def classify(exc: BaseException) -> str:
    """UNREACHABLE when Redis did not answer, REFUSING when it answered with an error."""
    if isinstance(exc, NO_ANSWER) or not isinstance(exc, RedisError):
        return UNREACHABLE
    return REFUSING


class Link:
    def __init__(self, ok: bool, clock: Clock):
        self.state = OK if ok else UNREACHABLE
        self.clock = clock
        self.last_error: str | None = None
        self.last_write: str | None = None  # ISO time of the last successful write
        self.on_change: Callable[[bool], None] | None = None  # e.g. Metrics.set_redis_up

    @property
    def ok(self) -> bool:
        return self.state == OK

    @property
    def connected(self) -> bool:
        """Redis answered last time (possibly with a refusal)."""
        return self.state != UNREACHABLE

    def failed(self, exc: BaseException) -> None:
        state = classify(exc)
        if state != self.state:
            log.warning("signals: Redis %s, counting degraded: %r", state, exc)
        self.state = state
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        self._notify()

    def wrote(self) -> None:
        """A write succeeded: the only proof that counting works again."""
        if self.state != OK and self.last_error:
            log.warning("signals: Redis takes writes again")
        self.state = OK
        self.last_write = self.clock().isoformat()
        self._notify()

    def problems(self) -> list[str]:
        return [] if self.ok else [PROBLEMS[self.state]]

    def _notify(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self.ok)
            except Exception:  # metrics must never break counting
                log.exception("signals: link observer failed")
