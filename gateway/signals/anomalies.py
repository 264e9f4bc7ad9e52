"""rules/anomalies.yaml: declared thresholds, written like correlation rules an admin can read.

    format: crmgw.rules/v1
    rules:
      - id: bulk-export
        title: Bulk export of customer records
        count: records_exported        # a counter of detectors.events, a flag, or distinct_records
        group_by: [user]               # [user] or [user, resource]
        match: {operations: ["*.export"], off_hours: true}   # optional: which requests count
        timespan: 1h                   # 1m 5m 1h 1d 7d
        condition: {gt: 500, and_gt_user_max_days: 3.0}    # gt|gte, and optionally N x the user's largest day
        level: high                    # low | medium | high | critical
        action: alert                  # alert | block | step_up
        action_ttl: 1h                 # required for block and step_up
        summary: "{user} exported {value} records in {timespan} (usual max {baseline})"
        exceptions:                    # silence this rule's finding; never grant access
          - {user: {in: [svc-reporting]}}

Every problem is reported at once as ``file:line:col``; unknown counters, operations, users, roles
and summary placeholders are errors, not silent no-ops. Evaluation lives in gateway.signals.thresholds.

An exception's keys are criteria of the policy language (gateway.policy.criteria: ``user``, ``role``,
``operation``, ``country``, plus ``resource``), compiled and checked by the same code as in a policy.
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictBool, StrictStr, model_validator

from gateway.model import RequestContext, Resource
from gateway.policy.criteria._membership import SetMembership
from gateway.policy.criteria.base import CompileEnv, Item, known
from gateway.policy.criteria.country import CountryCriterion
from gateway.policy.criteria.operation import OperationCriterion, expand, no_match
from gateway.policy.criteria.role import RoleCriterion
from gateway.policy.criteria.user import UserCriterion
from gateway.policy.schema import ID_PATTERN
from gateway.rulefile import RuleError, StrictModel, load_yaml, validate_at
from gateway.signals.counters import FIELDS, TIMESPANS

COUNTABLE = FIELDS + ("distinct_records",)
PLACEHOLDERS = frozenset(
    {
        "user",
        "resource",
        "value",
        "threshold",
        "baseline",
        "timespan",
        "count",
        "rule",
        "title",
        "level",
        "country",
        "ip",
        "operation",
    }
)
DURATION = re.compile(r"^(\d+)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_ACTION_TTL = 30 * 86400
GroupBy = Literal["user", "resource"]
_BY_USER: list[GroupBy] = ["user"]


class ResourceCriterion(SetMembership):
    """``resource: {in: [customers]}``: the catalogue resource of the request's operation.

    Not registered with the policy criteria: a policy names operations (``customers.*``), and
    registering it would add a keyword to every policy file. Anomaly exceptions add it here.
    """

    name = "resource"
    ok, fail, unknown = "resource-ok", "resource-unauthorized", "resource-unknown"

    @classmethod
    def check(cls, item: Item, env: CompileEnv) -> Any | None:
        return known(item, {resource.name for resource in env.operations.values()}, "resource", env)

    def fact(self, ctx: RequestContext) -> Any:
        return ctx.endpoint.resource_name if ctx.endpoint is not None else None


# The keys an exception may use, each compiled by its criterion; in the order they are checked.
EXCEPTION_CRITERIA: dict[str, type[SetMembership]] = {
    "user": UserCriterion,
    "role": RoleCriterion,
    "resource": ResourceCriterion,
    "operation": OperationCriterion,
    "country": CountryCriterion,
}
EXCEPTION_KEYS = tuple(EXCEPTION_CRITERIA)


class Header(StrictModel):
    format: Literal["crmgw.rules/v1"]
    rules: list[Any] = Field(default_factory=list)


class MatchSpec(StrictModel):
    operations: list[StrictStr] | None = Field(default=None, min_length=1)
    off_hours: StrictBool | None = None


class ConditionSpec(StrictModel):
    gt: float | None = Field(default=None, ge=0, strict=True)
    gte: float | None = Field(default=None, ge=0, strict=True)
    and_gt_user_max_days: float | None = Field(default=None, gt=0, strict=True)

    @model_validator(mode="after")
    def _one_absolute(self) -> ConditionSpec:
        if (self.gt is None) == (self.gte is None):
            raise ValueError("give exactly one of 'gt' or 'gte'")
        return self


class ExceptionSpec(StrictModel):
    """The keys of one exception; each value is checked when its criterion compiles it."""

    user: Any = None
    role: Any = None
    resource: Any = None
    operation: Any = None
    country: Any = None

    @model_validator(mode="after")
    def _not_empty(self) -> ExceptionSpec:
        if all(getattr(self, k) is None for k in EXCEPTION_KEYS):
            raise ValueError(f"an exception needs at least one of {', '.join(EXCEPTION_KEYS)}")
        return self


class RuleSpec(StrictModel):
    id: StrictStr = Field(pattern=ID_PATTERN, max_length=100)
    title: StrictStr = Field(min_length=1)
    description: StrictStr = ""
    status: Literal["active", "disabled"] = "active"
    count: Literal[COUNTABLE]  # type: ignore[valid-type]
    group_by: list[GroupBy] = Field(default_factory=lambda: _BY_USER.copy())
    match: MatchSpec | None = None
    timespan: Literal[tuple(TIMESPANS)]  # type: ignore[valid-type]
    condition: ConditionSpec
    level: Literal["low", "medium", "high", "critical"]
    action: Literal["alert", "block", "step_up"] = "alert"
    action_ttl: StrictStr | None = None
    summary: StrictStr = Field(min_length=1)
    exceptions: list[ExceptionSpec] = Field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class ExceptionMatcher:
    """One ``exceptions`` item: every criterion in it must hold for the finding's facts."""

    tests: tuple[tuple[str, SetMembership], ...]  # (fact name, compiled criterion)

    def matches(self, facts: Mapping[str, Any]) -> bool:
        for key, criterion in self.tests:
            fact = facts.get(key)
            if isinstance(fact, (set, frozenset, list, tuple)) and not fact:
                fact = None  # no roles at all is an unknown fact, even for ``not_in``
            if criterion.holds(fact) is not True:  # unknown never silences (nor grants: see thresholds)
                return False
        return True


@dataclasses.dataclass(frozen=True, slots=True)
class AnomalyRule:
    id: str
    title: str
    count: str
    by_resource: bool
    operations: frozenset[str] | None
    off_hours: bool | None
    timespan: str
    gt: float | None
    gte: float | None
    factor: float | None  # and_gt_user_max_days
    level: str
    action: str
    action_ttl: int  # seconds; 0 for alert
    summary: str
    exceptions: tuple[ExceptionMatcher, ...]
    source: str  # file:line
    description: str = ""

    @property
    def threshold(self) -> float:
        return self.gt if self.gt is not None else self.gte  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True, slots=True)
class AnomalyRules:
    rules: tuple[AnomalyRule, ...]
    file: str = ""

    @property
    def active(self) -> tuple[AnomalyRule, ...]:
        return self.rules


def parse_duration(text: str) -> int | None:
    m = DURATION.match(text)
    return int(m.group(1)) * UNIT_SECONDS[m.group(2)] if m else None


def _exception(env: CompileEnv, spec: ExceptionSpec) -> ExceptionMatcher | None:
    """Compile one exception found at ``env.path``; None after reporting its problems to ``env``."""
    tests: list[tuple[str, SetMembership]] = []
    ok = True
    for key, cls in EXCEPTION_CRITERIA.items():
        raw = getattr(spec, key)
        if raw is None:
            continue
        criterion = cls.compile(raw, env.at(key))
        if criterion is None:
            ok = False
        else:
            tests.append((key, criterion))
    return ExceptionMatcher(tuple(tests)) if ok else None


def _compile(env: CompileEnv, spec: RuleSpec) -> AnomalyRule | None:
    """Check one validated rule found at ``env.path``; None after reporting its problems to ``env``."""
    doc, path, errors = env.doc, env.path, env.errors
    before = len(errors)
    if spec.group_by not in (["user"], ["user", "resource"]):
        errors.append(doc.error(path + ("group_by",), "group_by must be [user] or [user, resource]"))
    operations: set[str] | None = None
    if spec.match is not None and spec.match.operations is not None:
        operations = set()
        for i, pattern in enumerate(spec.match.operations):
            ops = expand(pattern, env.operations)
            if not ops:
                errors.append(doc.error(path + ("match", "operations", i), no_match(pattern)))
            operations |= ops or set()
    if spec.condition.and_gt_user_max_days is not None and spec.count == "distinct_records":
        errors.append(
            doc.error(
                path + ("condition", "and_gt_user_max_days"),
                "distinct_records has no daily history; use an absolute condition only",
            )
        )
    ttl = 0
    if spec.action != "alert":
        if spec.action_ttl is None:
            errors.append(doc.error(path + ("action",), f"action {spec.action!r} needs action_ttl (e.g. 1h)"))
        else:
            ttl = parse_duration(spec.action_ttl) or 0
            if not 0 < ttl <= MAX_ACTION_TTL:
                errors.append(
                    doc.error(
                        path + ("action_ttl",),
                        f"action_ttl {spec.action_ttl!r} must be like 90s, 30m, 1h or 2d (at most 30d)",
                    )
                )
    elif spec.action_ttl is not None:
        errors.append(doc.error(path + ("action_ttl",), "action_ttl only applies to block and step_up"))
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(spec.summary) if f is not None}
        for name in sorted(names - PLACEHOLDERS):
            errors.append(
                doc.error(
                    path + ("summary",), f"unknown placeholder {{{name}}}; use: {', '.join(sorted(PLACEHOLDERS))}"
                )
            )
    except ValueError as exc:
        errors.append(doc.error(path + ("summary",), f"bad summary template: {exc}"))
    matchers = [_exception(env.at("exceptions", i), item) for i, item in enumerate(spec.exceptions)]
    if len(errors) != before:
        return None
    return AnomalyRule(
        id=spec.id,
        title=spec.title,
        description=spec.description,
        count=spec.count,
        by_resource=spec.group_by == ["user", "resource"],
        operations=frozenset(operations) if operations is not None else None,
        off_hours=spec.match.off_hours if spec.match else None,
        timespan=spec.timespan,
        gt=spec.condition.gt,
        gte=spec.condition.gte,
        factor=spec.condition.and_gt_user_max_days,
        level=spec.level,
        action=spec.action,
        action_ttl=ttl,
        summary=spec.summary,
        exceptions=tuple(m for m in matchers if m is not None),
        source=f"{doc.file}:{doc.loc(path)[0]}",
    )


def load_anomalies(
    path: Path, display: str, *, operations: Iterable[str], roles: Iterable[str], users: Iterable[str]
) -> tuple[AnomalyRules | None, list[RuleError]]:
    """Load and check anomalies.yaml; (rules, []) or (None, every problem found)."""
    doc, errors = load_yaml(path, display)
    if doc is None:
        return None, errors
    header = validate_at(doc, (), doc.data, Header, errors)
    if header is None:
        return None, errors
    # What the criteria check names against. Operations come by name only: each one's resource is
    # the part before the dot, as the catalogue requires.
    env = CompileEnv(
        doc=doc,
        path=(),
        lists={},
        operations={op: Resource(op.partition(".")[0]) for op in operations},
        roles=frozenset(roles),
        users=frozenset(users),
        errors=errors,
    )
    rules: list[AnomalyRule] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(header.rules):
        where = ("rules", index)
        spec = validate_at(doc, where, raw, RuleSpec, errors)
        if spec is None:
            continue
        if spec.id in seen:
            errors.append(
                doc.error(where + ("id",), f"duplicate rule id {spec.id!r} (first defined at line {seen[spec.id]})")
            )
            continue
        seen[spec.id] = doc.loc(where)[0]
        rule = _compile(env.at(*where), spec)
        if rule is not None and spec.status == "active":
            rules.append(rule)
    if errors:
        return None, errors
    return AnomalyRules(tuple(rules), doc.file), []
