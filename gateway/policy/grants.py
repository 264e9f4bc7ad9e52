"""rules/grants.yaml: time-boxed extra permissions that lapse by themselves.

    grants:
      - id: grant-alice-export-2027q1
        user: alice
        operations: [customers.export]          # exact operation ids, no globs: grants stay narrow
        until: "2027-01-31T18:00:00+01:00"      # required, with a UTC offset
        from: "2026-11-01T00:00:00+01:00"       # optional
        data_scope: own                         # default own
        reason: Quarterly pipeline review, ticket SEC-1042
        require_mfa: false                      # optional

A grant acts like an allow rule (its id is the rule id, kind ``grant``) for that user while
``from <= now < until``; deny rules still win. Expired grants stay valid in the file and show up in
the trace as ``grant-expired``, so an admin can see why yesterday's access stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.model import Resource
from gateway.policy.compiled import CompiledGrant
from gateway.policy.schema import GrantsHeader, GrantSpec
from gateway.rulefile import Document, RuleError, validate_at


def parse_instant(doc: Document, path: tuple[Any, ...], text: str, errors: list[RuleError]) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        errors.append(doc.error(path, f"bad date-time {text!r}: use ISO 8601, e.g. 2026-12-31T18:00:00+01:00"))
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        errors.append(doc.error(path, f"date-time {text!r} needs a UTC offset, e.g. +01:00 or Z"))
        return None
    return value


def scope_problem(level: str, operation: str, resource: Resource) -> str | None:
    """Why ``level`` cannot be enforced on ``operation`` (None when it can)."""
    if level == "all" or level in resource.scope_fields:
        return None
    return (
        f"data scope {level!r} is not supported by resource {resource.name!r} of operation "
        f"{operation!r} (it has no {level!r} scope field; supported: "
        f"{', '.join(sorted(resource.scope_fields) + ['all'])})"
    )


def compile_grants(
    doc: Document,
    *,
    operations: Mapping[str, Resource],
    users: frozenset[str],
    taken: dict[str, str],
    errors: list[RuleError],
) -> list[CompiledGrant]:
    """Compile every grant of ``doc``; ``taken`` maps ids already used (rules) to their file:line."""
    header = validate_at(doc, (), doc.data, GrantsHeader, errors)
    if header is None:
        return []
    out: list[CompiledGrant] = []
    for index, raw in enumerate(header.grants):
        path = ("grants", index)
        spec: GrantSpec | None = validate_at(doc, path, raw, GrantSpec, errors)
        if spec is None:
            continue
        line = doc.loc(path)[0]
        if spec.id in taken:
            message = f"duplicate rule id {spec.id!r} (first defined at {taken[spec.id]})"
            errors.append(doc.error(path + ("id",), message))
            continue
        taken[spec.id] = f"{doc.file}:{line}"
        before = len(errors)
        if spec.user not in users:
            errors.append(doc.error(path + ("user",), f"unknown user {spec.user!r}"))
        for i, op in enumerate(spec.operations):
            where = path + ("operations", i)
            if op not in operations:
                errors.append(doc.error(where, f"unknown operation {op!r} (grants name exact operation ids)"))
                continue
            problem = scope_problem(spec.data_scope, op, operations[op])
            if problem:
                errors.append(doc.error(path + ("data_scope",), problem))
        until = parse_instant(doc, path + ("until",), spec.until, errors)
        start = parse_instant(doc, path + ("from",), spec.from_, errors) if spec.from_ is not None else None
        if until is not None and start is not None and start >= until:
            errors.append(doc.error(path + ("until",), "'until' must be later than 'from'"))
        if len(errors) != before or until is None:
            continue
        out.append(
            CompiledGrant(
                id=spec.id,
                user=spec.user,
                operations=frozenset(spec.operations),
                until=until,
                start=start,
                scope=spec.data_scope,
                reason=spec.reason,
                require_mfa=spec.require_mfa,
                source=f"{doc.file}:{line}",
                col=doc.loc(path)[1],
            )
        )
    return out
