"""Behaviour counters in this process only: the single-instance demo default and offline replay.

Same semantics as the Redis script (gateway/signals/lua.py), with exact sets where Redis uses
HyperLogLog. Expiry follows event time instead of Redis TTLs: buckets older than their TTL relative
to the newest event are pruned every ``PRUNE_EVERY`` events, so memory stays bounded in a long replay.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from gateway.signals.config import SignalsConfig
from gateway.signals.counters import (
    DAY,
    SEEN_KINDS,
    SEQUENCE_CAP,
    SEQUENCE_TTL,
    TIMESPANS,
    CountRequest,
    CountResult,
    GroupResult,
    bucket_sizes,
    bucket_ttls,
    hll_sizes,
    window_buckets,
)

PRUNE_EVERY = 1000


class MemoryCounters:
    name = "memory"

    def __init__(self, config: SignalsConfig):
        self.config = config
        self.ttls = bucket_ttls(config.history_days)
        # (user, group prefix, bucket secs, bucket no) -> counters / record keys
        self.buckets: dict[tuple[str, str, int, int], dict[str, int]] = {}
        self.distinct: dict[tuple[str, str, int, int], set[str]] = {}
        self.viewed: dict[tuple[str, str], dict[int, int]] = {}  # (user, resource) -> id -> last view t
        self.seen: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)  # (user, kind) -> value -> t
        self.recent_by_user: dict[str, deque[dict[str, Any]]] = {}
        self.history_cache: dict[tuple[str, str, int], dict[str, int]] = {}
        self.newest = 0
        self._since_prune = 0

    async def count(self, requests: list[CountRequest]) -> list[CountResult]:
        out = []
        for req in requests:
            out.append(self._count_one(req))
            await asyncio.sleep(0)  # CPU-bound: let requests through between events
        return out

    def _count_one(self, req: CountRequest) -> CountResult:
        t, user = req.t, req.user
        inc = dict(req.increments)
        flags: dict[str, int] = {}

        def add_flag(name: str, n: int = 1) -> None:
            flags[name] = flags.get(name, 0) + n
            inc[name] = inc.get(name, 0) + n

        if req.sequence is not None:
            self._sequence(user, req.sequence, t, add_flag)
        keep = self.config.remember_days * DAY
        for kind, value in req.seen.items():
            known = self.seen[(user, kind)]
            if known.get(value, -1) < t - keep:  # not seen within `keep`: new, if anything else was
                for old in [v for v, when in known.items() if when < t - keep]:
                    del known[old]
                if known:
                    add_flag(SEEN_KINDS[kind])
                known[value] = t
                if len(known) > self.config.remember_max:
                    for old in sorted(known, key=lambda v: (known[v], v))[: len(known) - self.config.remember_max]:
                        del known[old]
            else:
                known[value] = max(t, known[value])

        groups = {}
        for g in req.groups:
            # The union before this request, kept: the union after it is that plus this request's
            # record keys (its bucket is in every window), so each window is unioned once, not twice.
            unions = {name: self._union(user, g.prefix, t, name) for name in g.distinct}
            for gran in bucket_sizes(g):
                key = (user, g.prefix, gran, t // gran)
                bucket = self.buckets.setdefault(key, {})
                for k, v in inc.items():
                    if v:
                        bucket[k] = bucket.get(k, 0) + v
            if req.record_keys:
                for gran in hll_sizes(g):
                    self.distinct.setdefault((user, g.prefix, gran, t // gran), set()).update(req.record_keys)
            windows = {}
            for name in g.windows:
                gran = TIMESPANS[name][0]
                total: dict[str, int] = {}
                for b in window_buckets(t, name):
                    for k, v in self.buckets.get((user, g.prefix, gran, b), {}).items():
                        total[k] = total.get(k, 0) + v
                windows[name] = total
            history: dict[str, int] = {}
            if g.history:
                history = self._history(user, g.prefix, t // DAY)
            groups[g.prefix] = GroupResult(
                windows=windows,
                distinct={n: (len(u), len(u.union(req.record_keys))) for n, u in unions.items()},
                history_max=history,
            )
        if req.recent is not None:
            recent = self.recent_by_user.setdefault(user, deque(maxlen=self.config.recent_requests))
            recent.appendleft(req.recent)
        self.newest = max(self.newest, t)
        self._since_prune += 1
        if self._since_prune >= PRUNE_EVERY:
            self.prune()
        return CountResult(flags=flags, increments=inc, groups=groups)

    def _sequence(self, user: str, sequence: tuple[str, int], t: int, add_flag: Callable[[str, int], None]) -> None:
        """Adjacent pairs among the record ids viewed, whatever the order (as the script does)."""
        resource, rid = sequence
        viewed = self.viewed.setdefault((user, resource), {})

        def near(when: int | None) -> bool:
            return when is not None and abs(when - t) <= SEQUENCE_TTL

        own = viewed.get(rid)
        if not near(own):
            n = near(viewed.get(rid - 1)) + near(viewed.get(rid + 1))
            if n:
                add_flag("sequential_ids", n)
        if own is None or own < t:
            viewed[rid] = t
            if own is None:
                for old in [i for i, when in viewed.items() if when < t - SEQUENCE_TTL]:
                    del viewed[old]
                if len(viewed) > SEQUENCE_CAP:
                    for old in sorted(viewed, key=lambda i: (viewed[i], i))[: len(viewed) - SEQUENCE_CAP]:
                        del viewed[old]

    def _history(self, user: str, prefix: str, day: int) -> dict[str, int]:
        """Largest daily totals before ``day``, computed once per group and day (as the script does)."""
        key = (user, prefix, day)
        if key not in self.history_cache:
            history: dict[str, int] = {}
            for i in range(1, self.config.history_days + 1):
                for k, v in self.buckets.get((user, prefix, DAY, day - i), {}).items():
                    history[k] = max(history.get(k, 0), v)
            self.history_cache[key] = history
        return dict(self.history_cache[key])

    def _union(self, user: str, prefix: str, t: int, timespan: str) -> set[str]:
        gran = TIMESPANS[timespan][0]
        out: set[str] = set()
        for b in window_buckets(t, timespan):
            out |= self.distinct.get((user, prefix, gran, b), set())
        return out

    def prune(self) -> None:
        """Forget buckets and sequences whose TTL has passed, measured from the newest event."""
        self._since_prune = 0
        for store in (self.buckets, self.distinct):
            for key in [k for k in store if (k[3] + 1) * k[2] + self.ttls[k[2]] < self.newest]:
                del store[key]
        for sequence in [k for k, ids in self.viewed.items() if max(ids.values()) + SEQUENCE_TTL < self.newest]:
            del self.viewed[sequence]
        today = self.newest // DAY
        for cached in [k for k in self.history_cache if k[2] < today - 1]:
            del self.history_cache[cached]

    async def recent(self, user: str) -> list[dict[str, Any]]:
        return list(self.recent_by_user.get(user, ()))

    async def close(self) -> None:
        return None
