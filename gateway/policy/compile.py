"""Turn the parsed policy and grant files into a :class:`CompiledPolicy`, or report every problem.

Checks, each reported as ``file:line:col: message`` and all at once (pySigma's validators):
unknown keys (pydantic ``extra=forbid``), duplicate rule ids across files and grants, duplicate
list names, unknown operations / roles / users / lists / criteria, bad CIDRs, time zones and
``HH:MM`` times, data scope levels the operation's resource cannot enforce, mask field paths, and
allow rules that can never grant because an unconditional deny (``deny: true``) covers all their
operations ("unreachable"). The result is None whenever there is any problem: a half-valid rule set
is never used (fail closed; the store keeps the last good one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.fieldpath import FieldPathError, parse
from gateway.model import SCOPE_LEVELS, ApprovalRequirement, Mask, Resource
from gateway.policy.compiled import CompiledGrant, CompiledPolicy, CompiledRule, OperationRules
from gateway.policy.conditions import Always, Node, build
from gateway.policy.criteria.base import CompileEnv, ListDef
from gateway.policy.criteria.operation import expand, no_match
from gateway.policy.grants import compile_grants, scope_problem
from gateway.policy.schema import LIST_NAME, LIST_VALUES, ApprovalSpec, ApproversSpec, PolicyHeader, RuleSpec
from gateway.rulefile import Document, RuleError, validate_at


def compile_policies(
    docs: list[Document],
    grants_doc: Document | None,
    *,
    operations: Mapping[str, Resource],
    roles: set[str],
    users: set[str],
) -> tuple[CompiledPolicy | None, list[RuleError]]:
    errors: list[RuleError] = []
    headers: list[tuple[Document, PolicyHeader]] = []
    for doc in docs:
        header = validate_at(doc, (), doc.data, PolicyHeader, errors)
        if header is not None:
            headers.append((doc, header))
    lists = _collect_lists(headers, errors)
    taken: dict[str, str] = {}  # rule id -> file:line where it was first defined
    rules: list[CompiledRule] = []
    for doc, header in headers:
        env = CompileEnv(doc, (), lists, operations, frozenset(roles), frozenset(users), errors)
        for index, raw in enumerate(header.rules):
            rule = _compile_rule(raw, env.at("rules", index), taken)
            if rule is not None:
                rules.append(rule)
    grants: list[CompiledGrant] = []
    if grants_doc is not None:
        grants = compile_grants(grants_doc, operations=operations, users=frozenset(users), taken=taken, errors=errors)
    _check_unreachable(rules, grants, errors)
    if errors:
        return None, sorted(set(errors))
    return _index(rules, grants, operations), []


def _collect_lists(headers: Iterable[tuple[Document, PolicyHeader]], errors: list[RuleError]) -> dict[str, ListDef]:
    """Named lists form one namespace across all policy files (a list is defined once)."""
    lists: dict[str, ListDef] = {}
    for doc, header in headers:
        for name, raw in header.lists.items():
            path = ("lists", name)
            if not re.match(LIST_NAME, name):
                errors.append(doc.error(path, f"bad list name {name!r}: letters, digits and _ only"))
                continue
            if name in lists:
                first = lists[name]
                where = f"{first.doc.file}:{first.doc.loc(first.path)[0]}"
                errors.append(doc.error(path, f"duplicate list {name!r} (first defined at {where})"))
                continue
            values = validate_at(doc, path, raw, LIST_VALUES, errors)
            if values is None:
                continue
            if not values:
                errors.append(doc.error(path, f"list {name!r} is empty"))
                continue
            lists[name] = ListDef(name, tuple(values), doc, path)
    return lists


def _compile_rule(raw: Any, env: CompileEnv, taken: dict[str, str]) -> CompiledRule | None:
    doc, path, errors = env.doc, env.path, env.errors
    spec: RuleSpec | None = validate_at(doc, path, raw, RuleSpec, errors)
    if spec is None:
        return None
    source = f"{doc.file}:{doc.loc(path)[0]}"
    if spec.id in taken:
        env.error(f"duplicate rule id {spec.id!r} (first defined at {taken[spec.id]})", "id")
        return None
    taken[spec.id] = source
    before = len(errors)
    ops = _match_operations(spec.match.operations, env)
    block = _block(spec, env)
    masks: tuple[Mask, ...] = ()
    approval, approval_when = None, None
    if spec.deny is not None:
        for key in ("data_scope", "mask", "approval"):
            if getattr(spec, key):
                env.error(f"'{key}' belongs to allow rules (a deny grants nothing to scope or mask)", key)
    else:
        _check_scope(spec.data_scope, ops, env)
        masks = _masks(spec, env)
        if spec.approval is not None:
            approval, approval_when = _approval(spec.id, spec.approval, env)
    if len(errors) != before or block is None:
        return None
    return CompiledRule(
        id=spec.id,
        title=spec.title,
        kind="deny" if spec.deny is not None else "allow",
        mode=spec.mode,
        operations=ops,
        block=block,
        data_scope=dict(spec.data_scope) if spec.data_scope is not None else None,
        masks=masks,
        source=source,
        col=doc.loc(path)[1],
        active=spec.status == "active",
        step_up=any(leaf.step_up for leaf in block.leaves()),
        leaves=tuple(block.leaves()),
        approval=approval,
        approval_when=approval_when,
    )


def _match_operations(patterns: list[str], env: CompileEnv) -> frozenset[str]:
    found: set[str] = set()
    for i, pattern in enumerate(patterns):
        ops = expand(pattern, env.operations)
        if not ops:
            env.error(no_match(pattern), "match", "operations", i)
        found |= ops or set()
    return frozenset(found)


def _block(spec: RuleSpec, env: CompileEnv) -> Node | None:
    if (spec.allow is None) == (spec.deny is None):
        env.error("a rule has exactly one of 'allow' or 'deny'")
        return None
    kind = "allow" if spec.allow is not None else "deny"
    raw = spec.allow if kind == "allow" else spec.deny
    if raw is True and kind == "deny":
        return Always()
    if isinstance(raw, bool):
        hint = (
            "an allow rule needs at least one criterion"
            if kind == "allow"
            else "use status: disabled to switch a rule off"
        )
        env.error(f"'{kind}: {str(raw).lower()}' is not allowed: {hint}", kind)
        return None
    return build(raw, env.at(kind), good=kind == "allow")


def _check_scope(data_scope: Mapping[str, str] | None, ops: frozenset[str], env: CompileEnv) -> None:
    for role, level in (data_scope or {}).items():
        where = ("data_scope", role)
        if role not in env.roles:
            env.error(f"unknown role {role!r}", *where)
        if level not in SCOPE_LEVELS:
            env.error(f"unknown data scope {level!r} (one of {', '.join(SCOPE_LEVELS)})", *where)
            continue
        for op in sorted(ops):
            problem = scope_problem(level, op, env.operations[op])
            if problem:
                env.error(problem, *where)
                break


def _masks(spec: RuleSpec, env: CompileEnv) -> tuple[Mask, ...]:
    masks = []
    for i, mask in enumerate(spec.mask):
        try:
            path = parse(mask.field)
        except FieldPathError as exc:
            env.error(str(exc), "mask", i, "field")
            continue
        if not path or path[-1][1]:
            env.error(f"mask field {mask.field!r} must name a field, not a record or list items", "mask", i, "field")
            continue
        if mask.keep_last and mask.op != "redact":
            env.error("keep_last only applies to op: redact", "mask", i, "keep_last")
            continue
        masks.append(Mask(mask.field, mask.op, mask.keep_last))
    return tuple(masks)


def _approval(rule_id: str, raw: ApprovalSpec, env: CompileEnv) -> tuple[ApprovalRequirement | None, Node | None]:
    """``approval:`` (four-eyes, gateway.approvals): approvers by role and/or the requester's manager,
    how long a request and then its approval stay valid, and an optional ``when`` condition."""
    roles: list[str] = []
    manager = raw.approvers == "manager"
    if isinstance(raw.approvers, ApproversSpec):
        roles, manager = list(raw.approvers.roles), raw.approvers.manager
        for i, role in enumerate(roles):
            if role not in env.roles:
                env.error(f"unknown role {role!r}", "approval", "approvers", "roles", i)
        if not roles and not manager:
            env.error(
                "approvers: name roles, or manager: true (somebody must be able to approve)", "approval", "approvers"
            )
    found = re.fullmatch(r"(\d+)([smhd])", raw.valid_for)
    seconds = int(found.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)] if found else None
    if not seconds or seconds > 30 * 86400:
        env.error(f"valid_for {raw.valid_for!r} must be like 90s, 30m, 1h or 2d (at most 30d)", "approval", "valid_for")
        seconds = None
    when = None
    if raw.when is not None:
        when = build(raw.when, env.at("approval", "when"), good=True)
        if when is None:
            return None, None
    if seconds is None:
        return None, None
    return ApprovalRequirement(rule=rule_id, roles=frozenset(roles), manager=manager, valid_for=seconds), when


def _check_unreachable(rules: list[CompiledRule], grants: list[CompiledGrant], errors: list[RuleError]) -> None:
    """An allow (or grant) whose every operation an unconditional deny covers can never grant."""
    walls = [r for r in rules if r.active and r.mode == "enforce" and r.kind == "deny" and r.unconditional]
    if not walls:
        return
    denied = frozenset().union(*(w.operations for w in walls))
    allows = [r for r in rules if r.active and r.mode == "enforce" and r.kind == "allow"]
    targets = [(r.id, r.operations, r.source, r.col) for r in allows]
    targets += [(g.id, g.operations, g.source, g.col) for g in grants]
    for rule_id, ops, source, col in targets:
        if ops and ops <= denied:
            by = sorted(w.id for w in walls if w.operations & ops)
            file, line = source.rsplit(":", 1)
            label = "rule" if len(by) == 1 else "rules"
            message = f"unreachable: {rule_id!r} is always denied by {label} {', '.join(by)}"
            errors.append(RuleError(file, int(line), col, message))


def _index(
    rules: list[CompiledRule], grants: list[CompiledGrant], operations: Mapping[str, Resource]
) -> CompiledPolicy:
    live = sorted((r for r in rules if r.active), key=lambda r: r.id)
    by_operation: dict[str, OperationRules] = {}
    for op in operations:
        here = [r for r in live if op in r.operations]
        by_user: dict[str, list[CompiledGrant]] = {}
        for grant in sorted(grants, key=lambda g: g.id):
            if op in grant.operations:
                by_user.setdefault(grant.user, []).append(grant)
        by_operation[op] = OperationRules(
            denies=tuple(r for r in here if r.kind == "deny" and r.mode == "enforce"),
            allows=tuple(r for r in here if r.kind == "allow" and r.mode == "enforce"),
            shadows=tuple(r for r in here if r.mode == "shadow"),
            grants={user: tuple(gs) for user, gs in by_user.items()},
        )
    return CompiledPolicy(
        by_operation=by_operation,
        rules={r.id: r for r in rules},
        grants={g.id: g for g in grants},
    )
