"""Decide one request: deny wins, otherwise any allow, otherwise deny (``default-deny``).

Order of checks, each failing closed:

1. no identity                     -> 401 ``unauthenticated`` (nothing about the catalogue leaks)
2. no catalogue endpoint           -> 403 ``operation-unknown``
3. an inactive user                -> 403 ``user-inactive`` (the identity stage refuses them too)
4. enforce deny rules of the operation: a block that is True *or unknown* denies (missing facts
   never lift a deny)
5. a user without roles is never allowed (``role-unauthorized``: no role of theirs authorises them)
6. enforce allow rules and the user's grants: a block that is True grants, with the widest data
   scope among the granting rules for the user's roles and the union of their masks; a granting
   block whose ``data_scope`` lists none of the user's roles grants nothing. An ``approval`` of any
   granting rule (its ``when`` true or unknown) is an obligation: like masks, one rule asking is
   enough (the first by rule id says who approves); the pipeline enforces it (gateway.approvals)
7. nothing granted: 401 ``mfa-required`` when a multi-factor credential alone would have granted
   (step-up), else ``data-scope-undefined``, else the failing criterion of an allow rule written for
   this caller (below), else ``default-deny``

What a refusal names (``reason``, and ``rules`` whose first entry is the rule the client is told):

- **A deny rule fired**: the reason is that rule's deciding criterion, the most specific one that is
  not about who the caller is (``time-window-outside`` rather than the ``role`` the rule targets,
  ``method-unauthorized`` rather than the role next to it, ``country-denied`` rather than the network
  test around it); a caller criterion decides only when the rule has nothing else. ``rules`` starts
  with the deny rule that gave the reason, then any other deny rule that fired.
- **An allow rule was for this caller but a condition failed**: an allow rule is *for* a caller when
  its caller criteria (``role``, ``user``) do not rule them out (see ``CompiledRule.for_caller``). The
  reason is the first obstacle of the closest such rule (fewest failing criteria, then rule id): its
  least specific failing criterion that is not a caller criterion, so a method or operation mismatch
  says ``method-unauthorized`` / ``operation-unauthorized`` before a time window or network does,
  and a missing second factor comes last (when it alone is missing, step 7 already asked for it).
  A rule for this caller that did not grant always has such an obstacle: had only caller criteria
  failed, they alone would have ruled the caller out.
  ``rules`` holds the allow rules that were for this caller and failed, the closest first: the rules
  that would have granted had the request been different. ``reasons`` lists their obstacles.
- **No allow rule was for this caller** (or none exists for the operation): ``default-deny``, and
  ``rules`` is empty. An allow rule for another role (``admin-everything``) did not decide anything
  and is not named; the trace still shows how every rule evaluated. A grant that has lapsed is
  explained in the trace the same way.

Shadow rules are evaluated on every request of their operation and reported in
``Decision.shadow`` (what they *would* have done), never enforced.

Steps 4 to 7 are remembered by the facts the operation's rules read (gateway.policy.cache): a
request whose facts equal an earlier one's gets that decision, which is what evaluating would give.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from gateway.model import (
    SCOPE_RANK,
    ApprovalRequirement,
    CriterionTrace,
    Decision,
    Identity,
    Mask,
    Obligations,
    RequestContext,
    RuleTrace,
    ShadowResult,
)
from gateway.policy.cache import DECISION_CACHE_SIZE, DecisionCache
from gateway.policy.compiled import Blocker, CompiledGrant, CompiledPolicy, CompiledRule
from gateway.policy.conditions import Evaluated

ALL = Obligations()
SCOPE_UNDEFINED = (CriterionTrace("data_scope", False, "data-scope-undefined"),)
DEFAULT_DENY = "default-deny"

# A rule or grant that granted: (id, data scope, masks, its trace).
Granted = tuple[str, str, tuple[Mask, ...], RuleTrace]
# A rule whose block was evaluated, with the raw result of each criterion.
Evaluation = tuple[CompiledRule, Evaluated]


def deny_rank(b: Blocker) -> tuple[bool, int, int]:
    """Why a deny rule fired: what it refuses (most specific first), not whom it targets."""
    return (b.caller, -b.specificity, b.position)


def obstacle_rank(b: Blocker) -> tuple[bool, bool, int, int]:
    """Why an allow rule for this caller did not grant: the least specific failing condition first
    (a wrong method before a time window), and ``mfa-required`` only when nothing else is in the way:
    a second factor would not help a caller who is also on the wrong network."""
    return (b.caller, b.step_up, b.specificity, b.position)


def _most_specific(rule: CompiledRule, results: Evaluated, default: str) -> str:
    blockers = rule.blockers(results)
    return min(blockers, key=deny_rank).reason if blockers else default


def _dedup(reasons: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(reasons))


class PolicyEngine:
    """Evaluates a :class:`CompiledPolicy` (immutable); one instance serves every request, its cache
    only remembering answers the rules give."""

    def __init__(self, policy: CompiledPolicy, revision: str = "", *, cache_size: int = DECISION_CACHE_SIZE):
        self.policy = policy
        self.revision = revision
        # Decisions by the facts their rules read (gateway.policy.cache); owned by this engine, so
        # a rules reload (a new RuleSet, a new engine) starts from an empty cache.
        self.cache = DecisionCache(policy, cache_size)

    def _deny(self, reason: str, status: int = 403, **fields: Any) -> Decision:
        return Decision("deny", reason, revision=self.revision, status=status, **fields)

    def decide(self, ctx: RequestContext, grants: tuple[CompiledGrant, ...] = ()) -> Decision:
        """``grants``: the caller's grants for this operation from outside the rule files (approved
        access requests, gateway.access), applied exactly like those of grants.yaml."""
        identity = ctx.identity
        if identity is None:
            return self._deny("unauthenticated", status=401)
        if ctx.endpoint is None:
            return self._deny("operation-unknown")
        if not identity.user.active:
            return self._deny("user-inactive")
        operation = ctx.endpoint.operation
        key = self.cache.key(ctx, identity, operation, grants)
        if key is not None:
            found = self.cache.get(key)
            if found is not None:
                return found
        decision = self._decide(ctx, identity, operation, grants)
        if key is not None:
            self.cache.put(key, decision)
        return decision

    def _decide(
        self, ctx: RequestContext, identity: Identity, operation: str, grants: tuple[CompiledGrant, ...]
    ) -> Decision:
        """Steps 4 to 7 for a known, active caller of a catalogued operation (uncached)."""
        rules = self.policy.for_operation(operation)
        trace: list[RuleTrace] = []

        fired: list[Evaluation] = []
        for rule in rules.denies:
            value, results = rule.evaluate(ctx)
            hit = value is not False  # True or unknown: missing facts never lift a deny
            trace.append(rule.trace(hit, results))
            if hit:
                fired.append((rule, results))
        shadow = self._shadow(ctx, rules.shadows, trace)
        if fired:
            return self._deny_by_rules(fired, shadow, trace)
        roles = identity.roles
        if not roles:
            return self._deny("role-unauthorized", shadow=shadow, trace=tuple(trace))

        granted: list[Granted] = []
        failed: list[Evaluation] = []
        scope_undefined: list[str] = []
        approval = None  # four-eyes: any granting rule that asks for an approval makes it needed
        for rule in rules.allows:
            value, results = rule.evaluate(ctx)
            if value is not True:
                failed.append((rule, results))
                trace.append(rule.trace(False, results))
                continue
            scope = rule.scope_for(roles)
            if scope is None:
                scope_undefined.append(rule.id)
                trace.append(rule.trace(False, results, SCOPE_UNDEFINED))
            else:
                entry = rule.trace(True, results)
                granted.append((rule.id, scope, rule.masks, entry))
                trace.append(entry)
                approval = approval or rule.approval_for(ctx)  # rules by id: the first one's applies
        step_up: list[str] = []
        for grant in (*rules.grants.get(identity.user.id, ()), *grants):
            outcome = grant.check(ctx, identity)
            entry = RuleTrace(grant.id, "enforce", "grant", outcome.result is True, (outcome,))
            trace.append(entry)
            if outcome.result is True:
                granted.append((grant.id, grant.scope, (), entry))
            elif outcome.reason == "mfa-required":
                step_up.append(grant.id)

        if granted:
            return self._allow(granted, shadow, trace, approval)
        step_up += [rule.id for rule, _ in failed if self._grants_with_mfa(rule, ctx)]
        if step_up:
            return self._deny(
                "mfa-required",
                status=401,
                rules=tuple(sorted(step_up)),
                reasons=("mfa-required",),
                shadow=shadow,
                trace=tuple(trace),
            )
        if scope_undefined:
            return self._deny(
                "data-scope-undefined",
                rules=tuple(scope_undefined),
                reasons=("data-scope-undefined",),
                shadow=shadow,
                trace=tuple(trace),
            )
        mine = [(rule, results) for rule, results in failed if rule.for_caller(results)]
        if mine:
            return self._deny_by_conditions(mine, shadow, trace)
        return self._deny(DEFAULT_DENY, reasons=(DEFAULT_DENY,), shadow=shadow, trace=tuple(trace))

    def _allow(
        self,
        granted: list[Granted],
        shadow: tuple[ShadowResult, ...],
        trace: list[RuleTrace],
        approval: ApprovalRequirement | None = None,
    ) -> Decision:
        scope = max((g[1] for g in granted), key=SCOPE_RANK.__getitem__)
        masks = {m for g in granted for m in g[2]}
        obligations = (
            Obligations(scope, tuple(sorted(masks, key=lambda m: (m.field, m.op, m.keep_last))), approval)
            if scope != "all" or masks or approval is not None
            else ALL
        )
        return Decision(
            "allow",
            "allowed",
            rules=tuple(sorted(g[0] for g in granted)),
            reasons=_dedup(c.reason for g in granted for c in g[3].criteria),
            obligations=obligations,
            shadow=shadow,
            trace=tuple(trace),
            revision=self.revision,
        )

    def _deny_by_rules(
        self, fired: list[Evaluation], shadow: tuple[ShadowResult, ...], trace: list[RuleTrace]
    ) -> Decision:
        # ``fired`` is in rule-id order; the best-ranked reason across all fired denies decides, and
        # its rule comes first in ``rules`` (the one the client is told).
        ranked = sorted((deny_rank(b), rule.id, b.reason) for rule, res in fired for b in rule.blockers(res))
        reason, first = (ranked[0][2], ranked[0][1]) if ranked else ("denied-by-rule", fired[0][0].id)
        others = [rule.id for rule, _ in fired if rule.id != first]
        return self._deny(
            reason,
            rules=(first, *others),
            reasons=_dedup(why for _, _, why in ranked) or (reason,),
            shadow=shadow,
            trace=tuple(trace),
        )

    def _deny_by_conditions(
        self, mine: list[Evaluation], shadow: tuple[ShadowResult, ...], trace: list[RuleTrace]
    ) -> Decision:
        """Allow rules written for this caller failed on a condition: the closest one explains."""
        obstacles = {rule.id: sorted(rule.blockers(res), key=obstacle_rank) for rule, res in mine}
        # The closest rule: the fewest criteria in the way; ties broken by rule id.
        closest = min(obstacles, key=lambda rule_id: (len(obstacles[rule_id]), rule_id))
        others = sorted(rule_id for rule_id in obstacles if rule_id != closest)
        # A rule for this caller that did not grant has at least one non-caller obstacle (it cannot
        # be ruled out by caller criteria alone); the fallback only guards the invariant.
        reason = obstacles[closest][0].reason if obstacles[closest] else DEFAULT_DENY
        return self._deny(
            reason,
            rules=(closest, *others),
            reasons=_dedup(b.reason for rule_id in (closest, *others) for b in obstacles[rule_id]),
            shadow=shadow,
            trace=tuple(trace),
        )

    @staticmethod
    def _grants_with_mfa(rule: CompiledRule, ctx: RequestContext) -> bool:
        """Would this rule grant if the caller had used a multi-factor credential? (step-up)"""
        identity = ctx.identity
        if not rule.step_up or identity is None or identity.mfa:
            return False
        stepped = dataclasses.replace(ctx, identity=dataclasses.replace(identity, mfa=True))
        value, _ = rule.evaluate(stepped)
        return value is True and rule.scope_for(identity.roles) is not None

    @staticmethod
    def _shadow(ctx: RequestContext, rules: Iterable[CompiledRule], trace: list[RuleTrace]) -> tuple[ShadowResult, ...]:
        out = []
        for rule in rules:
            value, results = rule.evaluate(ctx)
            if rule.kind == "deny":
                hit = value is not False
                reason = _most_specific(rule, results, "denied-by-rule")
            else:
                roles = ctx.identity.roles if ctx.identity is not None else frozenset()
                hit = value is True and rule.scope_for(roles) is not None
                reason = "allowed"
            trace.append(rule.trace(hit, results))
            if hit:
                out.append(ShadowResult(rule.id, rule.kind, reason))
        return tuple(out)
