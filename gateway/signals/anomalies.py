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
"""

from __future__ import annotations

import dataclasses
import re
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError, model_validator

from gateway.policy.criteria.operation import expand, no_match
from gateway.policy.schema import ID_PATTERN
from gateway.rulefile import Document, RuleError, load_yaml
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
EXCEPTION_KEYS = ("user", "role", "resource", "operation", "country")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Header(_Strict):
    format: Literal["crmgw.rules/v1"]
    rules: list[Any] = Field(default_factory=list)


class MatchSpec(_Strict):
    operations: list[StrictStr] | None = Field(default=None, min_length=1)
    off_hours: StrictBool | None = None


class ConditionSpec(_Strict):
    gt: float | None = Field(default=None, ge=0, strict=True)
    gte: float | None = Field(default=None, ge=0, strict=True)
    and_gt_user_max_days: float | None = Field(default=None, gt=0, strict=True)

    @model_validator(mode="after")
    def _one_absolute(self):
        if (self.gt is None) == (self.gte is None):
            raise ValueError("give exactly one of 'gt' or 'gte'")
        return self


class Membership(_Strict):
    in_: list[StrictStr] | None = Field(default=None, alias="in", min_length=1)
    not_in: list[StrictStr] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self):
        if (self.in_ is None) == (self.not_in is None):
            raise ValueError("give exactly one of 'in' or 'not_in'")
        return self


class ExceptionSpec(_Strict):
    user: Membership | None = None
    role: Membership | None = None
    resource: Membership | None = None
    operation: Membership | None = None
    country: Membership | None = None

    @model_validator(mode="after")
    def _not_empty(self):
        if all(getattr(self, k) is None for k in EXCEPTION_KEYS):
            raise ValueError(f"an exception needs at least one of {', '.join(EXCEPTION_KEYS)}")
        return self


class RuleSpec(_Strict):
    id: StrictStr = Field(pattern=ID_PATTERN, max_length=100)
    title: StrictStr = Field(min_length=1)
    description: StrictStr = ""
    status: Literal["active", "disabled"] = "active"
    count: Literal[COUNTABLE]  # type: ignore[valid-type]
    group_by: list[Literal["user", "resource"]] = Field(default_factory=lambda: ["user"])
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
    """One ``exceptions`` item: every key present must hold (``in`` / ``not_in`` of a value)."""

    tests: tuple[tuple[str, bool, frozenset[str]], ...]  # (key, negated, values)

    def matches(self, facts: dict[str, Any]) -> bool:
        for key, negated, values in self.tests:
            fact = facts.get(key)
            have = set(fact) if isinstance(fact, (set, frozenset, list, tuple)) else {fact} - {None}
            if not have:  # a missing fact never silences (it also never grants: see thresholds)
                return False
            hit = bool(have & values)
            if hit == negated:
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


def validate_at(doc: Document, path: tuple, data: Any, model: type[BaseModel], errors: list[RuleError]):
    """Validate one part of ``doc``; problems go to ``errors`` at file:line:col (unknown keys at the key)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for item in exc.errors(include_url=False):
            loc = path + tuple(item["loc"])
            where = ".".join(str(p) for p in loc)
            if item["type"] == "extra_forbidden":
                line, col = doc.key_loc(loc)
                errors.append(RuleError(doc.file, line, col, f"{where}: unknown key {loc[-1]!r}"))
            else:
                errors.append(doc.error(loc, f"{where}: {item['msg']}"))
        return None


def parse_duration(text: str) -> int | None:
    m = DURATION.match(text)
    return int(m.group(1)) * UNIT_SECONDS[m.group(2)] if m else None


def _membership(
    doc: Document, path: tuple, key: str, spec: Membership, known: set[str] | None, errors: list[RuleError]
) -> tuple[str, bool, frozenset[str]]:
    values = spec.in_ if spec.in_ is not None else spec.not_in
    field = "in" if spec.in_ is not None else "not_in"
    out: set[str] = set()
    for i, value in enumerate(values or ()):
        where = path + (key, field, i)
        if key == "operation":
            ops = expand(value, known or set())
            if not ops:
                errors.append(doc.error(where, no_match(value)))
            out |= ops or set()
            continue
        if key == "country" and not re.fullmatch(r"[A-Z]{2}", value):
            errors.append(doc.error(where, f"country {value!r} must be an ISO 3166-1 alpha-2 code such as FR"))
        elif known is not None and value not in known:
            errors.append(doc.error(where, f"unknown {key} {value!r}"))
        out.add(value)
    return key, spec.not_in is not None, frozenset(out)


def _compile(
    doc: Document, path: tuple, spec: RuleSpec, known: dict[str, set[str] | None], errors: list[RuleError]
) -> AnomalyRule | None:
    before = len(errors)
    if spec.group_by not in (["user"], ["user", "resource"]):
        errors.append(doc.error(path + ("group_by",), "group_by must be [user] or [user, resource]"))
    operations = None
    if spec.match is not None and spec.match.operations is not None:
        operations = set()
        for i, pattern in enumerate(spec.match.operations):
            ops = expand(pattern, known["operation"] or set())
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
    matchers = []
    for i, exc in enumerate(spec.exceptions):
        tests = [
            _membership(doc, path + ("exceptions", i), key, getattr(exc, key), known[key], errors)
            for key in EXCEPTION_KEYS
            if getattr(exc, key) is not None
        ]
        matchers.append(ExceptionMatcher(tuple(tests)))
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
        exceptions=tuple(matchers),
        source=f"{doc.file}:{doc.loc(path)[0]}",
    )


def load_anomalies(
    path: Path, display: str, *, operations: set[str], roles: set[str], users: set[str]
) -> tuple[AnomalyRules | None, list[RuleError]]:
    """Load and check anomalies.yaml; (rules, []) or (None, every problem found)."""
    doc, errors = load_yaml(path, display)
    if doc is None:
        return None, errors
    header = validate_at(doc, (), doc.data, Header, errors)
    if header is None:
        return None, errors
    known: dict[str, set[str] | None] = {
        "operation": set(operations),
        "user": set(users),
        "role": set(roles),
        "resource": {op.partition(".")[0] for op in operations},
        "country": None,
    }
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
        rule = _compile(doc, where, spec, known, errors)
        if rule is not None and spec.status == "active":
            rules.append(rule)
    if errors:
        return None, errors
    return AnomalyRules(tuple(rules), doc.file), []
