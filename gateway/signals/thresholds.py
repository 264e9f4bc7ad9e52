"""Evaluating declared thresholds (rules/anomalies.yaml) against what the counters answered.

A rule *fires* on the request that makes its condition true, i.e. the condition holds after this
request and did not hold before it (``before = after - this request's increment``). So one burst gives
one finding (the first request over the threshold), without remembering anything: the same answer on
every instance, in Redis and in memory, live and in replay. When the window slides below the threshold
and the user crosses it again, that is a new episode and fires again.

Exceptions only silence a finding (no alert, no new block or step-up). They are never consulted by
``SignalsStage.check``, so they cannot lift a block or step-up in force, nor touch the policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from detectors.events import Increments
from gateway.signals.anomalies import AnomalyRule, AnomalyRules
from gateway.signals.counters import DAY, TIMESPANS, CountResult, GroupQuery, match_group


@dataclasses.dataclass(slots=True)
class Finding:
    rule: AnomalyRule
    user: str
    resource: str | None
    value: int
    threshold: float  # the effective threshold: max(absolute, factor x baseline)
    baseline: int | None  # the user's largest daily total before today (relative rules)
    summary: str
    evidence: dict[str, Any]
    time: datetime
    request_id: str | None = None
    silenced_by: int | None = None  # index of the exception that silenced it

    @property
    def score(self) -> float:
        return round(self.value / max(self.threshold, 1.0), 3)


def group_of(rule: AnomalyRule, inc: Increments, operation: str | None) -> str | None:
    """The counter group a rule reads for this request; None when the rule does not see it."""
    if rule.operations is not None and operation not in rule.operations:
        return None
    if rule.off_hours is not None and bool(inc.counts.get("off_hours")) != rule.off_hours:
        return None
    if rule.by_resource and not inc.resource:
        return None
    base = (
        match_group(rule.operations, rule.off_hours)
        if rule.operations is not None or rule.off_hours is not None
        else ""
    )
    if rule.by_resource:
        return f"{base}r:{inc.resource}:"
    return base or "g:"


Pairs = list[tuple[AnomalyRule, str]]  # (rule, the prefix of the group it reads)
Plan = tuple[list[GroupQuery], Pairs]


@dataclasses.dataclass(slots=True)
class _Need:
    """What the rules read from one group: window sums, distinct counts, the user's history."""

    windows: set[str] = dataclasses.field(default_factory=set)
    distinct: set[str] = dataclasses.field(default_factory=set)
    history: bool = False


def plan(rules: AnomalyRules | None, inc: Increments, operation: str | None, history: bool = True) -> Plan:
    """The groups to count for one request and the (rule, group) pairs to evaluate afterwards."""
    needs: dict[str, _Need] = {"g:": _Need()}
    if inc.resource:
        needs[f"r:{inc.resource}:"] = _Need()
    pairs: Pairs = []
    for rule in rules.rules if rules else ():
        prefix = group_of(rule, inc, operation)
        if prefix is None:
            continue
        need = needs.setdefault(prefix, _Need())
        if rule.count == "distinct_records":
            need.distinct.add(rule.timespan)
        else:
            need.windows.add(rule.timespan)
        if rule.factor is not None and history:
            need.history = True
        pairs.append((rule, prefix))
    groups = []
    for prefix, n in needs.items():
        windows, distinct = tuple(sorted(n.windows)), tuple(sorted(n.distinct))
        grans: tuple[int, ...] = ()
        if prefix.startswith("m:"):  # a match group keeps only the bucket sizes its rules read
            grans = tuple(sorted({TIMESPANS[w][0] for w in windows + distinct} | ({DAY} if n.history else set())))
        groups.append(GroupQuery(prefix, windows, distinct, n.history, grans))
    return groups, pairs


class PlanCache:
    """``plan`` memoised for one rule set.

    Why: the background worker planned every event from scratch (~75 us: a pass over every rule,
    sets, sorting, a SHA-1 per match group), yet the answer depends only on the rule set and on
    (operation, resource, off_hours) -- a few dozen combinations. The cached groups and pairs are
    shared between events and never mutated. A new rule set (reload) empties the cache.
    """

    MAX = 4096  # operations x resources x off_hours is small; this only bounds odd inputs

    def __init__(self) -> None:
        self._rules: AnomalyRules | None = None
        self._plans: dict[tuple[str | None, str | None, bool], Plan] = {}

    def plan(self, rules: AnomalyRules | None, inc: Increments, operation: str | None) -> Plan:
        if rules is not self._rules:
            self._rules, self._plans = rules, {}
        key = (operation, inc.resource, bool(inc.counts.get("off_hours")))
        found = self._plans.get(key)
        if found is None:
            found = plan(rules, inc, operation)
            if len(self._plans) < self.MAX:
                self._plans[key] = found
        return found


def _holds(rule: AnomalyRule, value: float, baseline: int | None) -> bool:
    absolute = value > rule.gt if rule.gt is not None else value >= rule.threshold
    relative = rule.factor is None or value > rule.factor * (baseline or 0)
    return absolute and relative


def evaluate(
    rule: AnomalyRule, prefix: str, result: CountResult, inc: Increments, record: dict[str, Any]
) -> Finding | None:
    """A finding when this request made ``rule``'s condition true (see module docstring)."""
    group = result.groups[prefix]
    if rule.count == "distinct_records":
        before, after = group.distinct[rule.timespan]
    else:
        after = group.windows[rule.timespan].get(rule.count, 0)
        before = after - result.increments.get(rule.count, 0)
    baseline = group.history_max.get(rule.count, 0) if rule.factor is not None else None
    if not _holds(rule, after, baseline) or _holds(rule, before, baseline):
        return None
    threshold = max(rule.threshold, (rule.factor or 0) * (baseline or 0))
    facts = {
        "user": inc.user,
        "role": set(record.get("roles") or ()),
        "resource": inc.resource,
        "operation": record.get("operation"),
        "country": inc.country,
    }
    silenced = next((i for i, m in enumerate(rule.exceptions) if m.matches(facts)), None)
    values = {
        "user": inc.user,
        "resource": inc.resource or "-",
        "value": after,
        "threshold": _num(threshold),
        "baseline": baseline if baseline is not None else "n/a",
        "timespan": rule.timespan,
        "count": rule.count,
        "rule": rule.id,
        "title": rule.title,
        "level": rule.level,
        "country": inc.country or "unknown",
        "ip": inc.ip or "unknown",
        "operation": record.get("operation") or "-",
    }
    evidence = {
        "rule": rule.id,
        "source": rule.source,
        "count": rule.count,
        "group": prefix,
        "timespan": rule.timespan,
        "value": after,
        "before": before,
        "threshold": threshold,
        "baseline": baseline,
        "counters": dict(group.windows.get(rule.timespan, {})),
        "distinct_records": group.distinct.get(rule.timespan, (None, None))[1],
        "flags": dict(result.flags),
        "request": {
            k: record.get(k) for k in ("request_id", "time", "operation", "path", "client_ip", "country", "status")
        },
    }
    return Finding(
        rule=rule,
        user=inc.user,
        resource=inc.resource,
        value=after,
        threshold=threshold,
        baseline=baseline,
        summary=rule.summary.format_map(values),
        evidence=evidence,
        time=inc.time,
        request_id=record.get("request_id"),
        silenced_by=silenced,
    )


def evaluate_all(
    pairs: Iterable[tuple[AnomalyRule, str]], result: CountResult, inc: Increments, record: dict[str, Any]
) -> list[Finding]:
    findings = []
    for rule, prefix in pairs:
        finding = evaluate(rule, prefix, result, inc, record)
        if finding is not None:
            findings.append(finding)
    return findings


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)
