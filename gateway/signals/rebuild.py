"""Counter windows restored from the audit log after a loss (``crmgw signals rebuild``).

Every audit record the gateway writes is also what its signals stage counted, and
:func:`detectors.events.count_event` is the one definition of what a record adds: the rebuild plans
each record with the current anomaly rules (the same groups live counting uses) and sends it through
the counting script in replay mode (gateway/signals/lua.py). What Redis holds already is not counted
twice: each user's marker says from which instant the keys hold the user's events, and records from
then on were counted live (or by an earlier rebuild) and are skipped, so running the rebuild again,
or over overlapping files, changes nothing.

After the replay, per user: the replayed records go to the end of the recent-requests list (they are
older than anything live), and the cached daily maxima (``hmax``) of today and of the newest
replayed day are dropped so the next request recomputes the baseline with the history back in it.
Finally the epoch records that the losses it began with are covered (gateway/signals/epoch.py), which
clears ``signals-data-lost`` on every instance at its next check.

Not restored: a threshold crossed by requests counted *between* the loss and the rebuild was
evaluated against the incomplete windows then and is not re-fired; a request in flight at the
instant of the loss may be counted twice. Blocks and step-ups are not stored under the counters and
are reloaded from their own key by every instance.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from detectors.events import count_event
from gateway.signals.anomalies import AnomalyRules
from gateway.signals.config import SignalsConfig
from gateway.signals.counters import DAY, CountRequest, count_request, marker_ttl, user_prefix
from gateway.signals.epoch import BEGIN_REBUILD, END_REBUILD, EPOCH_KEY
from gateway.signals.redis_backend import RedisCounters
from gateway.signals.thresholds import PlanCache

if TYPE_CHECKING:
    from gateway.redisconn import RedisClient

BATCH = 500  # records per pipeline


@dataclasses.dataclass(slots=True)
class RebuildReport:
    since: datetime
    until: datetime
    read: int = 0  # audit records read
    replayed: int = 0  # added to the counters
    skipped: int = 0  # counted already (live after the loss, or by an earlier rebuild)
    outside: int = 0  # before --since or not before the rebuild's start
    uncountable: int = 0  # no user, or a record count_event cannot read
    users: int = 0
    epoch: str = ""
    marked: bool = False  # the epoch now says the loss is covered

    def summary(self) -> str:
        return (
            f"{self.replayed} record(s) replayed for {self.users} user(s), {self.skipped} already "
            f"counted, {self.outside} outside {self.since.isoformat()} .. {self.until.isoformat()}, "
            f"{self.uncountable} uncountable, of {self.read} read; epoch {self.epoch} "
            + ("marked rebuilt" if self.marked else "NOT marked: it changed during the rebuild (lost again?)")
        )


def default_since(config: SignalsConfig, now: datetime) -> datetime:
    """As far back as Redis would still hold anything: the life of a user's longest-lived key."""
    return now - timedelta(seconds=marker_ttl(config.history_days, config.remember_days))


class _Users:
    """What the replay leaves to fix per user once every record is in."""

    def __init__(self, recent_cap: int):
        self.cap = recent_cap
        self.recent: dict[str, deque[dict[str, Any]]] = {}
        self.history: dict[str, set[str]] = {}  # user -> group prefixes whose rules read history
        self.newest_day: dict[str, int] = {}

    def add(self, req: CountRequest) -> None:
        if req.recent is not None:
            self.recent.setdefault(req.user, deque(maxlen=self.cap)).append(req.recent)
        self.history.setdefault(req.user, set()).update(g.prefix for g in req.groups if g.history)
        self.newest_day[req.user] = max(self.newest_day.get(req.user, 0), req.t // DAY)


async def rebuild(
    client: RedisClient,
    config: SignalsConfig,
    rules: AnomalyRules | None,
    records: Iterable[dict[str, Any]],
    *,
    now: datetime,
    since: datetime | None = None,
) -> RebuildReport:
    """Replay ``records`` (in time order) taken from ``since`` up to ``now`` into the Redis counters."""
    since = since or default_since(config, now)
    report = RebuildReport(since=since, until=now)
    counters = RedisCounters(client, config)
    epoch_id, losses = [
        v.decode() if isinstance(v, bytes) else str(v)
        for v in await client.eval(BEGIN_REBUILD, 1, EPOCH_KEY, secrets.token_hex(8), now.isoformat())
    ]
    report.epoch = epoch_id
    run, until_ms = secrets.token_hex(8), int(now.timestamp() * 1000)
    plans, users = PlanCache(), _Users(config.recent_requests)
    batch: list[CountRequest] = []

    async def flush() -> None:
        for req, counted in zip(batch, await counters.replay(batch, run=run, until_ms=until_ms)):
            if counted:
                report.replayed += 1
                users.add(req)
            else:
                report.skipped += 1
        batch.clear()

    for record in records:
        report.read += 1
        try:
            inc = count_event(record)
        except (KeyError, ValueError, TypeError):
            inc = None
        if inc is None or inc.time.tzinfo is None:  # the live stage skips these records too
            report.uncountable += 1
            continue
        if not since <= inc.time < now:
            report.outside += 1
            continue
        groups, _ = plans.plan(rules, inc, record.get("operation"))
        batch.append(count_request(inc, record, groups))
        if len(batch) >= BATCH:
            await flush()
    await flush()
    await _finish_users(client, config, users, now)
    report.users = len(users.newest_day)
    report.marked = bool(
        await client.eval(END_REBUILD, 1, EPOCH_KEY, epoch_id, losses, now.isoformat(), str(report.replayed))
    )
    return report


async def _finish_users(client: RedisClient, config: SignalsConfig, users: _Users, now: datetime) -> None:
    keep = config.remember_days * DAY
    today = int(now.timestamp()) // DAY
    pipe = client.pipeline(transaction=False)
    for user, newest in users.newest_day.items():
        p = user_prefix(user)
        replayed = users.recent.get(user)
        if replayed:  # older than every live entry: appended at the end, newest first
            pipe.rpush(p + "recent", *[orjson.dumps(r) for r in reversed(replayed)])
            pipe.ltrim(p + "recent", 0, config.recent_requests - 1)
            pipe.expire(p + "recent", keep)
        for prefix in users.history.get(user, ()):
            pipe.delete(*{f"{p}{prefix}hmax:{day}" for day in (newest, today - 1, today)})
        if len(pipe) >= BATCH:
            await pipe.execute()
            pipe = client.pipeline(transaction=False)
    if len(pipe):
        await pipe.execute()
