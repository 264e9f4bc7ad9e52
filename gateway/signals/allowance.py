"""The row budget of a streamed answer: how many more rows the caller may receive before a block rule fires.

A buffered answer is counted after it was sent, and the request that crosses a block threshold is
served whole (gateway.signals.thresholds: the crossing request fires, the block applies from the
next one). A streamed export of millions of rows cannot wait for that, so before the first row
goes out the stream asks, for each ``action: block`` rule that counts this operation's rows
(``records_exported`` for ``*.export``, ``records_read`` for list/view) and sees this request
(its ``match``, off-hours, resource group; not silenced by an exception):

    current   the user's window sum in the rule's group, read from the counters as they are now
    first     the smallest value that makes the condition true: gt N -> N+1, gte N -> N, and with
              ``and_gt_user_max_days F`` also more than F x the user's busiest earlier day
    reserved  rows the user's other streams in flight hold (gateway.signals.reservations)
    budget    first - current - reserved rows: the row that crosses goes out (as it would in a
              buffered answer), the stream is cut after it, the audit line counts it and the rule fires

The smallest budget over the rules wins. A rule already over its threshold gives none (it fired
when it was crossed, and a block in force refused the request before it got here). Counters read
through the backend's own keys (Redis: one pipelined round trip; memory: the dict). When they
cannot be read, an operation whose fail mode is ``closed`` is refused (503 signals-unavailable,
before anything is sent); otherwise the budget is the whole threshold (current taken as 0) and
``signals.row_budget`` on the audit line says so.

Concurrent streams of one user share the budget: the stream sends only rows it reserved, and
a reservation is granted atomically up to first - current (counters read afresh) minus what all of
the user's streams in flight hold (``RowBudget.reservation``; gateway.response.stream reserves as it
goes, gives it all back at the end). So the streams in flight together carry at most what one
stream alone could: first - current rows, the crossing one included, no reservation chunk on top.
Counters unreadable under fail mode ``open``: no reservation, each stream the whole threshold, as
before. Store unreachable mid-stream: no more rows reserved, the stream is cut (fail closed).

Not covered: rows of the user's requests still queued for counting, a stream's own rows included
between its end (its reservation given back) and their counting; and a reservation a stream keeps
without reserving more for longer than ``reservations.TTL_SECONDS`` (it expires meanwhile).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from detectors.events import Increments, is_off_hours
from gateway.errors import Unavailable
from gateway.model import Flow
from gateway.redishealth import STORAGE_ERRORS
from gateway.signals import reservations
from gateway.signals.anomalies import AnomalyRule, AnomalyRules
from gateway.signals.counters import DAY, TIMESPANS, user_prefix, window_buckets
from gateway.signals.memory_backend import MemoryCounters
from gateway.signals.redis_backend import RedisCounters
from gateway.signals.thresholds import group_of

if TYPE_CHECKING:
    from gateway.signals.stage import SignalsStage

COUNTER_OF_ACTION = {"export": "records_exported", "list": "records_read", "view": "records_read"}


@dataclasses.dataclass(frozen=True, slots=True)
class RowBudget:
    rows: int  # rows the answer may carry when it starts, the crossing one included
    rule: str  # the block rule that sets it
    # rows shared with the user's other streams in flight: sent only once reserved (None: no store,
    # or the counters unreadable under fail mode open: ``rows`` alone, as before)
    reservation: reservations.Reservation | None = None


def first_firing_value(rule: AnomalyRule, baseline: int) -> int:
    """The smallest window sum for which the rule's condition holds (thresholds._holds)."""
    absolute = math.floor(rule.gt) + 1 if rule.gt is not None else math.ceil(rule.threshold)
    if rule.factor is None:
        return absolute
    return max(absolute, math.floor(rule.factor * baseline) + 1)


async def row_budget(stage: SignalsStage, flow: Flow, rules: AnomalyRules | None) -> RowBudget | None:
    ctx, identity = flow.ctx, flow.identity
    if ctx is None or identity is None or rules is None or not ctx.operation:
        return None
    resource, _, action = ctx.operation.partition(".")
    counter = COUNTER_OF_ACTION.get(action)
    candidates = [r for r in rules.rules if r.action == "block" and r.count == counter]
    if counter is None or not candidates:
        return None
    now = stage.now()
    when = datetime.fromtimestamp(now, UTC)
    user = identity.user.id
    inc = Increments(
        user=user,
        time=when,
        resource=resource or None,
        action=action,
        counts={"off_hours": int(is_off_hours(when, identity.user.timezone))},
        record_keys=(),
        record_id=None,
        ip=flow.client_ip,
        network=None,
        country=ctx.country,
        user_agent=None,
    )
    facts = {
        "user": user,
        "role": set(identity.roles),
        "resource": resource or None,
        "operation": ctx.operation,
        "country": ctx.country,
    }
    wanted = []
    for rule in candidates:
        prefix = group_of(rule, inc, ctx.operation)
        if prefix is not None and not any(m.matches(facts) for m in rule.exceptions):
            wanted.append((rule, prefix))
    if not wanted:
        return None
    try:
        sums = await _read(stage, user, counter, int(now), wanted)
    except STORAGE_ERRORS as exc:
        if stage.config.fail_mode_for(ctx.operation) == "closed":
            raise Unavailable("signals-unavailable", detail=f"row budget: {exc}") from exc
        flow.signals["row_budget"] = "counters-unreadable: whole threshold"
        sums = [(0, 0) for _ in wanted]
        return _smallest(wanted, sums, [0] * len(wanted), None)  # no reservation: today's fail mode
    store = reservations.store_for(stage.backend)
    if store is None:
        return _smallest(wanted, sums, [0] * len(wanted), None)
    live = [
        (rule, prefix)
        for (rule, prefix), (current, base) in zip(wanted, sums)
        if current < first_firing_value(rule, base)
    ]
    keys = [reservations.reservation_key(user, rule.id) for rule, _ in live]
    try:
        held = [await store.held(key) for key in keys]
    except STORAGE_ERRORS as exc:
        if stage.config.fail_mode_for(ctx.operation) == "closed":
            raise Unavailable("signals-unavailable", detail=f"row budget: {exc}") from exc
        flow.signals["row_budget"] = "reservations-unreadable: whole threshold"
        return _smallest(wanted, [(0, 0) for _ in wanted], [0] * len(wanted), None)

    async def limits() -> list[int]:
        """first firing value - counted window sum per live rule, read now (other streams' rows
        are counted once they end)."""
        fresh = await _read(stage, user, counter, int(stage.now()), live)
        return [first_firing_value(rule, base) - current for (rule, _), (current, base) in zip(live, fresh)]

    held_of = dict(zip((rule.id for rule, _ in live), held))
    return _smallest(
        wanted, sums, [held_of.get(rule.id, 0) for rule, _ in wanted], reservations.Reservation(store, keys, limits)
    )


def _smallest(
    wanted: list[tuple[AnomalyRule, str]],
    sums: list[tuple[int, int]],
    held: list[int],
    reservation: reservations.Reservation | None,
) -> RowBudget | None:
    """The smallest budget over the rules not yet over their threshold (rows held by other streams
    in flight taken off; never below 0)."""
    best: RowBudget | None = None
    for (rule, _), (current, baseline), reserved in zip(wanted, sums, held):
        first = first_firing_value(rule, baseline)
        if current >= first:
            continue
        rows = max(0, first - current - reserved)
        if best is None or rows < best.rows:
            best = RowBudget(rows, rule.id, reservation)
    return best


def _keys(rule: AnomalyRule, prefix: str, t: int, history_days: int) -> tuple[list[tuple[int, int]], list[int]]:
    """(bucket size, bucket no) of the rule's window, and the earlier days for its baseline."""
    gran = TIMESPANS[rule.timespan][0]
    window = [(gran, b) for b in window_buckets(t, rule.timespan)]
    days = [t // DAY - i for i in range(1, history_days + 1)] if rule.factor is not None else []
    return window, days


async def _read(
    stage: SignalsStage, user: str, counter: str, t: int, wanted: list[tuple[AnomalyRule, str]]
) -> list[tuple[int, int]]:
    """(window sum, largest earlier daily total) of ``counter`` per (rule, group)."""
    history_days = stage.config.history_days
    plans = [(prefix, *_keys(rule, prefix, t, history_days)) for rule, prefix in wanted]
    backend = stage.backend
    if isinstance(backend, MemoryCounters):
        buckets = backend.buckets
        out = []
        for prefix, window, days in plans:
            current = sum(buckets.get((user, prefix, gran, b), {}).get(counter, 0) for gran, b in window)
            baseline = max((buckets.get((user, prefix, DAY, d), {}).get(counter, 0) for d in days), default=0)
            out.append((current, baseline))
        return out
    if not isinstance(backend, RedisCounters):
        return [(0, 0) for _ in wanted]  # a backend this module cannot read: the whole threshold
    base = user_prefix(user)
    pipe = backend.client.pipeline(transaction=False)
    for prefix, window, days in plans:
        for gran, b in window:
            pipe.hget(f"{base}{prefix}c:{gran}:{b}", counter)
        for d in days:
            pipe.hget(f"{base}{prefix}c:{DAY}:{d}", counter)
    replies = iter(await pipe.execute())
    out = []
    for _, window, days in plans:
        current = sum(int(next(replies) or 0) for _ in window)
        baseline = max((int(next(replies) or 0) for _ in days), default=0)
        out.append((current, baseline))
    return out
