"""``operation: {in: ["customers.*"]}`` -- the catalogue operation, globs expanded at compile time.

Expanding against the catalogue turns every evaluation into one set lookup, and a pattern that
matches nothing is reported instead of silently never applying.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any, Self

from gateway.model import RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria._membership import SetMembership
from gateway.policy.criteria.base import CompileEnv, Item, membership_values


def expand(pattern: Any, operations: Iterable[str]) -> frozenset[str] | None:
    """Operations a pattern names; None when the pattern is not a string."""
    if not isinstance(pattern, str):
        return None
    if not any(ch in pattern for ch in "*?["):
        return frozenset({pattern}) if pattern in operations else frozenset()
    return frozenset(op for op in operations if fnmatchcase(op, pattern))


def no_match(pattern: Any) -> str:
    """The error for a pattern that names no catalogue operation."""
    if isinstance(pattern, str) and not any(ch in pattern for ch in "*?["):
        return f"unknown operation {pattern!r}"
    return f"operation pattern {pattern!r} matches no operation in the catalogue"


def expand_item(item: Item, env: CompileEnv) -> frozenset[str] | None:
    ops = expand(item.value, env.operations)
    if not ops:
        env.errors.append(item.error(no_match(item.value)))
        return None
    return ops


@register
class OperationCriterion(SetMembership):
    name = "operation"
    ok, fail, unknown = "operation-ok", "operation-unauthorized", "operation-unknown"

    @classmethod
    def compile(cls, raw: Any, env: CompileEnv) -> Self | None:
        parsed = membership_values(raw, env, lambda item: expand_item(item, env))
        if not parsed:
            return None
        negated, groups = parsed
        return cls(negated, frozenset().union(*groups))

    def fact(self, ctx: RequestContext) -> Any:
        return ctx.operation
