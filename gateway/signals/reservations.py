"""Rows reserved by the streams of one user in flight, per block rule: shared by concurrent exports.

A streamed export may only send rows it reserved first. One counter per (user, rule):

    crmgw:{u:<user>}:resv:<rule>   rows reserved by that user's streams in flight (Redis: a string,
                                   in the user's cluster slot; memory: a dict of this process)

A reservation is granted atomically (one Lua script): at most ``limit - held`` rows, where ``limit``
is the rule's first firing value minus the user's counted window sum, read just before. So the
reservations of all streams in flight never exceed what the counters allow, and the rows they send
never exceed their reservations. A stream reserves ``CHUNK_ROWS`` (or what its next piece may need,
or what is left) as it goes and gives everything back when it ends, complete or cut: its rows are
counted from then on. The key expires ``TTL_SECONDS`` after the last reservation of any of the
user's streams: a gateway killed mid-export does not hold its rows for longer than that.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from gateway.redishealth import STORAGE_ERRORS
from gateway.signals.counters import user_prefix
from gateway.signals.memory_backend import MemoryCounters
from gateway.signals.redis_backend import RedisCounters

if TYPE_CHECKING:
    from gateway.redisconn import RedisClient

CHUNK_ROWS = 1000  # rows reserved at a time: one Redis round trip per chunk, not per row
TTL_SECONDS = 120  # read on every reservation (a test sets it low); longer than a pause between pieces

# held, then the grant: min(want, limit - held), never below 0; the TTL refreshed while any is held
RESERVE = """
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - held)
if grant < 0 then grant = 0 end
if grant > 0 then redis.call('INCRBY', KEYS[1], grant) end
if held + grant > 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
return grant
"""
# A key that expired meanwhile (TTL) is not driven negative: what it held is gone already.
RELEASE = """
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
local left = held - tonumber(ARGV[1])
if left > 0 then redis.call('DECRBY', KEYS[1], ARGV[1]) else redis.call('DEL', KEYS[1]) end
return left
"""


def reservation_key(user: str, rule: str) -> str:
    return f"{user_prefix(user)}resv:{rule}"


class Store(Protocol):
    async def held(self, key: str) -> int: ...
    async def reserve(self, key: str, want: int, limit: int) -> int: ...
    async def release(self, key: str, rows: int) -> None: ...


class RedisReservations:
    def __init__(self, client: RedisClient):
        self.client = client
        self._reserve = client.register_script(RESERVE)
        self._release = client.register_script(RELEASE)

    async def held(self, key: str) -> int:
        return int(await self.client.get(key) or 0)

    async def reserve(self, key: str, want: int, limit: int) -> int:
        return int(await self._reserve(keys=[key], args=[want, limit, TTL_SECONDS]))

    async def release(self, key: str, rows: int) -> None:
        await self._release(keys=[key], args=[rows])


class MemoryReservations:
    """The same in one process: each call runs without an await, so it is atomic on the event loop."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, float]] = {}  # key -> (held, expires at, monotonic)

    def _held(self, key: str) -> int:
        held, expires = self.rows.get(key, (0, 0.0))
        return held if expires > time.monotonic() else 0

    async def held(self, key: str) -> int:
        return self._held(key)

    async def reserve(self, key: str, want: int, limit: int) -> int:
        held = self._held(key)
        grant = max(0, min(want, limit - held))
        if held + grant > 0:
            self.rows[key] = (held + grant, time.monotonic() + TTL_SECONDS)
        return grant

    async def release(self, key: str, rows: int) -> None:
        held, expires = self.rows.get(key, (0, 0.0))
        if held - rows > 0 and expires > time.monotonic():
            self.rows[key] = (held - rows, expires)
        else:
            self.rows.pop(key, None)


_memory: weakref.WeakKeyDictionary[MemoryCounters, MemoryReservations] = weakref.WeakKeyDictionary()
_redis: weakref.WeakKeyDictionary[Any, RedisReservations] = weakref.WeakKeyDictionary()


def store_for(backend: object) -> Store | None:
    """The reservations next to the counters (None: a backend without them)."""
    if isinstance(backend, MemoryCounters):
        return _memory.setdefault(backend, MemoryReservations())
    if isinstance(backend, RedisCounters):
        store = _redis.get(backend)
        if store is None:
            store = _redis[backend] = RedisReservations(backend.client)
        return store
    return None


# The rules' current limits (first firing value - counted window sum), one per key, read afresh.
Limits = Callable[[], Awaitable[list[int]]]


class Reservation:
    """The rows one stream reserved under every rule that limits it; ``take`` more, ``release`` at the end."""

    def __init__(self, store: Store, keys: list[str], limits: Limits):
        self.store, self.keys, self.limits = store, keys, limits
        self.granted = 0

    async def take(self, want: int) -> int:
        """Up to ``want`` more rows under every rule (the smallest grant; the excess given back).
        Storage unreachable: none (the stream is cut, it never sends rows it did not reserve)."""
        try:
            limits = await self.limits()
            grants = [await self.store.reserve(key, want, limit) for key, limit in zip(self.keys, limits)]
            got = min(grants, default=0)
            for key, grant in zip(self.keys, grants):
                if grant > got:
                    await self.store.release(key, grant - got)
        except STORAGE_ERRORS:
            return 0
        self.granted += got
        return got

    async def release(self) -> None:
        """Everything back: the rows sent are counted from now on, the rest was never sent."""
        rows, self.granted = self.granted, 0
        if not rows:
            return
        for key in self.keys:
            try:
                await self.store.release(key, rows)
            except STORAGE_ERRORS:
                pass  # expires with the TTL
