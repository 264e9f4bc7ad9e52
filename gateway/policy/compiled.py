"""The compiled, immutable form of the policy files that the engine evaluates.

Rules are indexed by catalogue operation at compile time (globs already expanded), and each list
is sorted by rule id, so a decision looks at only the rules of its operation and never depends on
the order of files or of rules inside them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple

from gateway.model import SCOPE_RANK, ApprovalRequirement, CriterionTrace, Identity, Mask, RequestContext, RuleTrace
from gateway.policy.conditions import Always, Evaluated, Leaf, Node
from gateway.policy.criteria.base import Outcome

TRACE_CACHE_SIZE = 64


class Blocker(NamedTuple):
    """One criterion result that stood in the way of access, with what ranks it as a reason."""

    caller: bool  # a who-criterion (role, user): says whom the rule is for, not what went wrong
    step_up: bool  # satisfied by a multi-factor login (mfa)
    specificity: int
    position: int  # in the rule's block, for a stable order
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    title: str
    kind: Literal["allow", "deny"]
    mode: Literal["enforce", "shadow"]
    operations: frozenset[str]
    block: Node
    data_scope: Mapping[str, str] | None = None  # role -> scope level; None: scope ``all``
    masks: tuple[Mask, ...] = ()
    source: str = ""  # file:line of the rule
    col: int = 1
    active: bool = True  # ``status: disabled`` rules are validated, never indexed
    step_up: bool = False  # the block has an ``mfa`` criterion a step-up could satisfy
    leaves: tuple[Leaf, ...] = ()  # the block's criteria in evaluation order
    # Four-eyes (``approval:``): what a granted request needs, and when (None: always).
    approval: ApprovalRequirement | None = None
    approval_when: Node | None = None
    # RuleTrace objects by outcome: a rule has few distinct outcomes, and building frozen
    # dataclasses is what a decision would otherwise spend most of its time on.
    _traces: dict[tuple[object, ...], RuleTrace] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def unconditional(self) -> bool:
        return isinstance(self.block, Always)

    def evaluate(self, ctx: RequestContext) -> tuple[Outcome, Evaluated]:
        out: Evaluated = []
        return self.block.eval(ctx, out), out

    def trace(self, matched: bool, results: Evaluated, extra: tuple[CriterionTrace, ...] = ()) -> RuleTrace:
        key = (matched, extra, *results)
        found = self._traces.get(key)
        if found is None:
            criteria = tuple(leaf.traces[r] for leaf, r in zip(self.leaves, results)) + extra
            found = RuleTrace(self.id, self.mode, self.kind, matched, criteria)
            if len(self._traces) < TRACE_CACHE_SIZE:
                self._traces[key] = found
        return found

    def blockers(self, results: Evaluated) -> list[Blocker]:
        """Every result that stood in the way of access."""
        return [
            Blocker(leaf.caller, leaf.step_up, leaf.specificity, i, leaf.traces[r].reason)
            for i, (leaf, r) in enumerate(zip(self.leaves, results))
            if leaf.bad(r)
        ]

    def for_caller(self, results: Evaluated) -> bool:
        """Could this rule match this caller on some request? Its block folded with the caller's own
        criteria (role, user) as evaluated and every other fact unknown: False means the caller
        criteria alone rule them out, so the rule was written for somebody else."""
        values = iter([r if leaf.caller else None for leaf, r in zip(self.leaves, results)])
        return self.block.fold(values) is not False

    def outline(self, criteria: tuple[CriterionTrace, ...]) -> dict[str, Any] | None:
        """The block's and/or/not tree with every node's value, from this rule's trace criteria (the
        leaves' come first; a trailing ``data_scope`` entry is not part of the block)."""
        if len(criteria) < len(self.leaves):
            return None
        return self.block.outline(iter(criteria[: len(self.leaves)]))

    def approval_for(self, ctx: RequestContext) -> ApprovalRequirement | None:
        """The approval this granted request needs: its ``when`` true *or unknown* (fail closed)."""
        if self.approval is None:
            return None
        if self.approval_when is not None and self.approval_when.eval(ctx, []) is False:
            return None
        return self.approval

    def scope_for(self, roles: frozenset[str]) -> str | None:
        """Widest scope this rule gives these roles; None when none of them is listed."""
        if self.data_scope is None:
            return "all"
        best: str | None = None
        for role, level in self.data_scope.items():
            if role in roles and (best is None or SCOPE_RANK[level] > SCOPE_RANK[best]):
                best = level
        return best


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledGrant:
    """A time-boxed allow for one user: from <= now < until."""

    id: str
    user: str
    operations: frozenset[str]
    until: datetime
    start: datetime | None
    scope: str
    reason: str
    require_mfa: bool = False
    source: str = ""  # file:line of the grant
    col: int = 1

    def check(self, ctx: RequestContext, identity: Identity) -> CriterionTrace:
        now = ctx.now
        if now.tzinfo is None or now.utcoffset() is None:
            return CriterionTrace("grant", None, "grant-time-unknown")
        if self.start is not None and now < self.start:
            return CriterionTrace("grant", False, "grant-not-yet-active")
        if now >= self.until:
            return CriterionTrace("grant", False, "grant-expired")
        if self.require_mfa and not identity.mfa:
            return CriterionTrace("mfa", False, "mfa-required")
        return CriterionTrace("grant", True, "grant-active")


@dataclasses.dataclass(frozen=True, slots=True)
class OperationRules:
    """Everything that can apply to one operation, each tuple sorted by id."""

    denies: tuple[CompiledRule, ...] = ()
    allows: tuple[CompiledRule, ...] = ()
    shadows: tuple[CompiledRule, ...] = ()
    grants: Mapping[str, tuple[CompiledGrant, ...]] = dataclasses.field(default_factory=dict)  # by user


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledPolicy:
    by_operation: Mapping[str, OperationRules]
    rules: Mapping[str, CompiledRule]  # every rule by id, disabled ones included
    grants: Mapping[str, CompiledGrant]

    def for_operation(self, operation: str | None) -> OperationRules:
        return self.by_operation.get(operation or "", EMPTY)


EMPTY = OperationRules()
