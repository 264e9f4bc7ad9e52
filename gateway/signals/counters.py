"""What the counter backends are asked and what they answer: one ``CountRequest`` per audit record.

Counting itself is defined once, in :func:`detectors.events.count_event`; this module turns its
``Increments`` into a request for a backend (Redis: :mod:`gateway.signals.redis_backend`, Python:
:mod:`gateway.signals.memory_backend`), which in ONE step adds the increments and reads back what the
threshold rules need. Both backends implement the same semantics:

* Sliding windows are sums of time buckets. ``1h`` is the current 5-minute bucket plus the 11 before
  it, i.e. between 55 and 60 minutes of history. Buckets expire by themselves (TTL), so nothing grows.
  The user and user+resource groups keep every bucket size; a match group only the sizes its rules
  read (and daily buckets when a rule compares with the user's history).
* A *group* is a key prefix under the user's namespace: ``g:`` (the user), ``r:<resource>:`` (user and
  resource), ``m:<hash>:`` / ``m:<hash>:r:<resource>:`` (only the requests a rule's ``match`` selects).
  The user and user+resource groups are always counted; match groups only when a rule asks.
* Daily buckets (86400 s) double as the per-user history: ``history_max`` is the largest daily total
  of each counter over the ``history_days`` days before today (UTC days), computed at the group's first
  request of the day and cached for the rest of it (a late event for an earlier day is not re-read).
* Flags: ``sequential_ids`` (a view of a record id N not viewed in the last hour adds one for each
  of N-1 and N+1 viewed within the hour: the adjacent pairs of a walk over ids are counted whatever
  order the views reach the backend in -- batches and replicas reorder them) and ``new_ip`` / ``new_network`` / ``new_country`` / ``new_user_agent`` (a
  value not seen for ``remember_days``, for a user seen with some other value within that time: a
  brand-new user's first IP is not "new").
  Flags are added to the counters, so rules count them like anything else.
* ``distinct_records``: HyperLogLog (Redis) or exact sets (memory) of ``resource:id`` per bucket,
  kept for the bucket sizes rules read (and daily for the user and user+resource groups); the
  answer is ``(before, after)`` this request, so a rule can tell when it was crossed.
* Lost data: the Redis backend keeps a marker per user that outlives every other key of the user
  and answers ``fresh`` when it had to create it (gateway/signals/epoch.py says what that means).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any, Protocol

from detectors.events import COUNTERS, Increments

# timespan -> (bucket seconds, number of buckets summed)
TIMESPANS: dict[str, tuple[int, int]] = {
    "1m": (10, 6),
    "5m": (60, 5),
    "1h": (300, 12),
    "1d": (7200, 12),
    "7d": (86400, 7),
}
DAY = 86400
ALL_BUCKET_SIZES = tuple(sorted({gran for gran, _ in TIMESPANS.values()} | {DAY}))
FLAGS = ("sequential_ids", "new_ip", "new_network", "new_country", "new_user_agent")
FIELDS = COUNTERS + FLAGS  # every counter a rule may name, except distinct_records (HyperLogLog)
SEEN_KINDS = {"ip": "new_ip", "net": "new_network", "country": "new_country", "ua": "new_user_agent"}
SEQUENCE_TTL = 3600  # how long a viewed record id is remembered for sequential-id detection
SEQUENCE_CAP = 2000  # viewed ids remembered per user and resource (the oldest forgotten first)
RECENT_FIELDS = (
    "time",
    "request_id",
    "operation",
    "method",
    "path",
    "status",
    "effect",
    "reason",
    "client_ip",
    "country",
    "records_returned",
    "targets",
    "user_agent",
)


def bucket_ttls(history_days: int) -> dict[int, int]:
    """Seconds each bucket size must live: its window plus one bucket; daily buckets for history."""
    ttls = {gran: gran * (n + 1) for gran, n in TIMESPANS.values()}
    ttls[DAY] = max(ttls.get(DAY, 0), DAY * (history_days + 2))
    return ttls


def marker_ttl(history_days: int, remember_days: int) -> int:
    """Seconds a user's marker lives after the user's last event: as long as any of the user's keys."""
    return max(max(bucket_ttls(history_days).values()), remember_days * DAY)


def user_prefix(user: str) -> str:
    """Every key of one user shares the hash tag ``{u:<user>}``: one slot on Redis Cluster."""
    return f"crmgw:{{u:{user}}}:"


def match_group(operations: frozenset[str] | None, off_hours: bool | None) -> str:
    """The group prefix of a rule's ``match``: rules with the same match share counters."""
    text = ",".join(sorted(operations or ())) + f"|{off_hours}"
    return "m:" + hashlib.sha1(text.encode()).hexdigest()[:10] + ":"


def short_hash(value: str) -> str:
    return hashlib.sha1(value.encode("utf-8", "replace")).hexdigest()[:16]


# A user's one or two user agents come back on every request: hashed once, not once per event.
_agent_hash = functools.lru_cache(maxsize=4096)(short_hash)


@dataclasses.dataclass(frozen=True, slots=True)
class GroupQuery:
    """One group to increment, and which of its values to read back."""

    prefix: str  # "g:", "r:customers:", "m:1a2b3c4d5e:", ...
    windows: tuple[str, ...] = ()  # timespans whose counter sums are wanted
    distinct: tuple[str, ...] = ()  # timespans whose distinct-record count is wanted
    history: bool = False  # the user's largest daily totals are wanted
    grans: tuple[int, ...] = ()  # bucket sizes to count into; () = all of them (user, resource)


@dataclasses.dataclass(slots=True)
class CountRequest:
    user: str
    t: int  # event time, epoch seconds
    increments: dict[str, int]
    groups: list[GroupQuery]
    record_keys: tuple[str, ...] = ()
    sequence: tuple[str, int] | None = None  # (resource, numeric id) of a single-record view
    seen: dict[str, str] = dataclasses.field(default_factory=dict)  # kind -> value (ip, net, country, ua)
    recent: dict[str, Any] | None = None  # compact audit record kept as evidence
    ms: int = 0  # event time in milliseconds: what lost data and a rebuild are told apart by


@dataclasses.dataclass(slots=True)
class GroupResult:
    windows: dict[str, dict[str, int]]  # timespan -> field -> sum (including this request)
    distinct: dict[str, tuple[int, int]]  # timespan -> (before, after) this request
    history_max: dict[str, int]  # field -> largest daily total before today


@dataclasses.dataclass(slots=True)
class CountResult:
    flags: dict[str, int]  # FLAGS set by this request
    increments: dict[str, int]  # what this request added (counters and flags)
    groups: dict[str, GroupResult]  # by prefix
    fresh: bool = False  # Redis created the user's marker: a new user, or the user's keys were lost


class CounterBackend(Protocol):
    name: str

    async def count(self, requests: list[CountRequest]) -> list[CountResult]:
        """Add every request and answer each; raises on a storage failure (the batch is lost)."""

    async def recent(self, user: str) -> list[dict[str, Any]]:
        """The user's most recent compact audit records, newest first."""

    async def close(self) -> None: ...


def count_request(inc: Increments, record: dict[str, Any], groups: list[GroupQuery]) -> CountRequest:
    """The backend request for one counted audit record."""
    # Runs once per counted request in the signals worker: one lookup per field, the time read once.
    seen: dict[str, str] = {}
    if inc.ip:
        seen["ip"] = inc.ip
    if inc.network:
        seen["net"] = inc.network
    if inc.country:
        seen["country"] = inc.country
    if inc.user_agent:
        seen["ua"] = _agent_hash(inc.user_agent)
    sequence = (inc.resource, inc.record_id) if inc.record_id is not None and inc.resource else None
    recent: dict[str, Any] = {}
    get = record.get
    for k in RECENT_FIELDS:
        value = get(k)
        if value is not None:
            recent[k] = value
    agent = recent.get("user_agent")
    if isinstance(agent, str):
        recent["user_agent"] = agent[:120]
    seconds = inc.time.timestamp()
    return CountRequest(
        user=inc.user,
        t=int(seconds),
        increments={k: v for k, v in inc.counts.items() if v},
        groups=groups,
        record_keys=inc.record_keys,
        sequence=sequence,
        seen=seen,
        recent=recent,
        ms=int(seconds * 1000),
    )


def bucket_sizes(group: GroupQuery) -> tuple[int, ...]:
    """Bucket sizes a group counts into: all for the base groups, what its rules read for the rest."""
    return group.grans or ALL_BUCKET_SIZES


def hll_sizes(group: GroupQuery) -> tuple[int, ...]:
    """Bucket sizes whose distinct-record HyperLogLogs a group keeps: those its rules read, plus the
    daily one for the user and user+resource groups (PFADD is the costly part of counting a list)."""
    sizes = {TIMESPANS[w][0] for w in group.distinct}
    if not group.grans:
        sizes.add(DAY)
    return tuple(sorted(sizes))


def window_buckets(t: int, timespan: str) -> list[int]:
    """Bucket numbers (of the timespan's bucket size) summed for ``timespan`` at time ``t``."""
    gran, n = TIMESPANS[timespan]
    b = t // gran
    return [b - i for i in range(n)]
