"""Decide one request: deny wins, otherwise any allow, otherwise deny (``default-deny``).

Order of checks, each failing closed:

1. no identity                     -> 401 ``unauthenticated`` (nothing about the catalogue leaks)
2. no catalogue endpoint           -> 403 ``operation-unknown``
3. an inactive user                -> 403 ``user-inactive`` (the identity stage refuses them too)
4. enforce deny rules of the operation: a block that is True *or unknown* denies (missing facts
   never lift a deny); the reason is the most specific criterion reason that pushed it there
5. a user without roles is never allowed
6. enforce allow rules and the user's grants: a block that is True grants, with the widest data
   scope among the granting rules for the user's roles and the union of their masks; a granting
   block whose ``data_scope`` lists none of the user's roles grants nothing
7. nothing granted: 401 ``mfa-required`` when a multi-factor credential alone would have granted
   (step-up), else ``data-scope-undefined``, else the first obstacle of the closest allow rule
   (fewest failing criteria; who-you-are before when/where: ``role-unauthorized`` beats
   ``mfa-required``), else ``default-deny``

A deny rule's reason is its *most* specific criterion (``time-window-outside`` rather than the
``role`` it targets; ``country-denied`` rather than the network test around it).

Shadow rules are evaluated on every request of their operation and reported in
``Decision.shadow`` (what they *would* have done), never enforced.
"""

from __future__ import annotations

import dataclasses

from gateway.model import (
    SCOPE_RANK,
    CriterionTrace,
    Decision,
    Mask,
    Obligations,
    RequestContext,
    RuleTrace,
    ShadowResult,
)
from gateway.policy.compiled import CompiledPolicy, CompiledRule
from gateway.policy.conditions import Evaluated

ALL = Obligations()
SCOPE_UNDEFINED = (CriterionTrace("data_scope", False, "data-scope-undefined"),)


def _most_specific(rule: CompiledRule, results: Evaluated, default: str) -> str:
    """Why a deny rule fired: its most specific criterion (the time window, not the role it targets)."""
    blockers = rule.blockers(results)
    return min(blockers)[2] if blockers else default


def _first_obstacle(rule: CompiledRule, results: Evaluated, default: str) -> str:
    """Why an allow rule did not grant: its least specific failing criterion. A caller of the wrong
    role is told ``role-unauthorized``, not ``mfa-required``: a second factor would not help them."""
    blockers = rule.blockers(results)
    return min(blockers, key=lambda b: (-b[0], b[1]))[2] if blockers else default


def _dedup(reasons) -> tuple[str, ...]:
    return tuple(dict.fromkeys(reasons))


class PolicyEngine:
    """Evaluates a :class:`CompiledPolicy`; immutable, so one instance serves every request."""

    def __init__(self, policy: CompiledPolicy, revision: str = ""):
        self.policy = policy
        self.revision = revision

    def _deny(self, reason: str, status: int = 403, **fields) -> Decision:
        return Decision("deny", reason, revision=self.revision, status=status, **fields)

    def decide(self, ctx: RequestContext) -> Decision:
        identity = ctx.identity
        if identity is None:
            return self._deny("unauthenticated", status=401)
        if ctx.endpoint is None:
            return self._deny("operation-unknown")
        if not identity.user.active:
            return self._deny("user-inactive")
        rules = self.policy.for_operation(ctx.endpoint.operation)
        trace: list[RuleTrace] = []

        fired: list[tuple[CompiledRule, Evaluated]] = []
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

        granted: list[tuple[str, str, tuple[Mask, ...], RuleTrace]] = []
        failed: list[tuple[CompiledRule, Evaluated]] = []
        scope_undefined: list[str] = []
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
        step_up: list[str] = []
        for grant in rules.grants.get(identity.user.id, ()):
            outcome = grant.check(ctx, identity)
            entry = RuleTrace(grant.id, "enforce", "grant", outcome.result is True, (outcome,))
            trace.append(entry)
            if outcome.result is True:
                granted.append((grant.id, grant.scope, (), entry))
            elif outcome.reason == "mfa-required":
                step_up.append(grant.id)

        if granted:
            return self._allow(granted, shadow, trace)
        step_up += [rule.id for rule, _ in failed if self._grants_with_mfa(rule, ctx)]
        if step_up:
            return self._deny(
                "mfa-required", status=401, rules=tuple(sorted(step_up)), reasons=("mfa-required",),
                shadow=shadow, trace=tuple(trace),
            )
        if scope_undefined:
            return self._deny(
                "data-scope-undefined", rules=tuple(scope_undefined), reasons=("data-scope-undefined",),
                shadow=shadow, trace=tuple(trace),
            )
        if failed:
            # The closest allow rule: the fewest criteria in the way; ties broken by rule id.
            rule, results = min(failed, key=lambda f: (len(f[0].blockers(f[1])), f[0].id))
            return self._deny(
                _first_obstacle(rule, results, "default-deny"),
                rules=(rule.id,),
                reasons=_dedup(b[2] for r, res in failed for b in sorted(r.blockers(res))),
                shadow=shadow,
                trace=tuple(trace),
            )
        return self._deny("default-deny", shadow=shadow, trace=tuple(trace))

    def _allow(self, granted, shadow, trace) -> Decision:
        scope = max((g[1] for g in granted), key=SCOPE_RANK.__getitem__)
        masks = {m for g in granted for m in g[2]}
        return Decision(
            "allow",
            "allowed",
            rules=tuple(sorted(g[0] for g in granted)),
            reasons=_dedup(c.reason for g in granted for c in g[3].criteria),
            obligations=Obligations(scope, tuple(sorted(masks, key=lambda m: (m.field, m.op, m.keep_last))))
            if scope != "all" or masks
            else ALL,
            shadow=shadow,
            trace=tuple(trace),
            revision=self.revision,
        )

    def _deny_by_rules(self, fired, shadow, trace) -> Decision:
        # ``fired`` is in rule-id order; the most specific reason across all fired denies decides.
        ranked = [(spec, rule.id, pos, why) for rule, res in fired for spec, pos, why in rule.blockers(res)]
        reason = min(ranked)[3] if ranked else "denied-by-rule"
        return self._deny(
            reason,
            rules=tuple(rule.id for rule, _ in fired),
            reasons=_dedup(b[2] for rule, res in fired for b in sorted(rule.blockers(res))) or (reason,),
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
    def _shadow(ctx: RequestContext, rules, trace: list[RuleTrace]) -> tuple[ShadowResult, ...]:
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
