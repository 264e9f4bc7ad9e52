"""Policy unit tests beside the rules (rules/tests/*.yaml), run by ``crmgw rules test``.

Like OPA's policy tests: each case names an identity, a request (and a write's body), a time and a
client address, and the decision it expects. A run with zero cases fails: a test suite that tests nothing must not pass.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import Field

from gateway.explain import decision_dict, explain, parse_time
from gateway.explain_defaults import DEFAULT_IP, DEFAULT_METHOD
from gateway.rulefile import RuleError, StrictModel, load_yaml, validate
from gateway.ruleset import RuleSet


class Expect(StrictModel):
    effect: Literal["allow", "deny"]
    reason: str | None = None
    rule: str | None = None
    scope: str | None = None
    masks: list[str] | None = None
    status: int | None = None


class Case(StrictModel):
    name: str = Field(min_length=1)
    user: str
    method: str = DEFAULT_METHOD
    path: str
    at: str
    ip: str | None = DEFAULT_IP
    country: str | None = None
    mfa: bool = False
    auth_method: Literal["jwt", "api_key", "trusted_header", "crm_jwt", "crm_token"] | None = None
    # A write's body, decided before forwarding like the live gateway does: a mapping or list is
    # sent as JSON, a string as it is (with content_type, e.g. a form body).
    body: dict[str, Any] | list[Any] | str | None = None
    content_type: str | None = None
    expect: Expect


class CaseFile(StrictModel):
    format: str
    tests: list[Case] = Field(min_length=1)


@dataclasses.dataclass(slots=True)
class Outcome:
    file: str
    line: int
    name: str
    passed: bool
    problems: list[str]


def load_cases(root: Path) -> tuple[list[tuple[str, int, Case]], list[RuleError]]:
    cases, errors = [], []
    for f in sorted((root / "tests").glob("*.yaml")):
        display = f"{root.name}/tests/{f.name}"
        doc, errs = load_yaml(f, display)
        errors += errs
        if doc is None:
            continue
        parsed, errs = validate(doc, CaseFile)
        errors += errs
        if parsed is None:
            continue
        for i, case in enumerate(parsed.tests):
            cases.append((display, doc.loc(("tests", i))[0], case))
    return cases, errors


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    return body.encode("utf-8") if isinstance(body, str) else orjson.dumps(body)


def run_case(ruleset: RuleSet, case: Case) -> list[str]:
    result = explain(
        ruleset,
        user=case.user,
        method=case.method,
        path=case.path,
        at=parse_time(case.at),
        ip=case.ip,
        mfa=case.mfa,
        country=case.country,
        body=_body_bytes(case.body),
        content_type=case.content_type or ("application/json" if case.body is not None else None),
        auth_method=case.auth_method or "explain",
    )
    d = result.decision
    got = decision_dict(d, result.ctx)
    want = case.expect
    problems = []
    if d.effect != want.effect:
        problems.append(f"effect: want {want.effect}, got {d.effect} (reason {d.reason})")
    if want.reason is not None and d.reason != want.reason and want.reason not in d.reasons:
        problems.append(f"reason: want {want.reason}, got {d.reason} {list(d.reasons)}")
    if want.rule is not None and want.rule not in d.rules:
        problems.append(f"rule: want {want.rule}, got {list(d.rules)}")
    if want.scope is not None and got.get("scope") != want.scope:
        problems.append(f"scope: want {want.scope}, got {got.get('scope')}")
    if want.masks is not None:
        fields = sorted(m["field"] for m in got.get("masks", []))
        if fields != sorted(want.masks):
            problems.append(f"masks: want {sorted(want.masks)}, got {fields}")
    if want.status is not None and got.get("status") != want.status:
        problems.append(f"status: want {want.status}, got {got.get('status')}")
    return problems


def run_all(root: Path, ruleset: RuleSet) -> tuple[list[Outcome], list[RuleError]]:
    cases, errors = load_cases(root)
    outcomes = []
    for file, line, case in cases:
        try:
            problems = run_case(ruleset, case)
        except ValueError as exc:  # bad time or IP in the test case itself
            problems = [f"bad test case: {exc}"]
        outcomes.append(Outcome(file, line, case.name, not problems, problems))
    return outcomes, errors
