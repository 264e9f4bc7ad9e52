"""``crmgw explain`` and the policy unit tests: decide a described request without any traffic.

Both go through ``pipeline.build_context`` and the live ``PolicyEngine`` so what an admin is told
is exactly what the running gateway would do (same normalisation, same catalogue, same rules).

The defaults of a described request (:data:`DEFAULT_METHOD` and :data:`DEFAULT_IP`, defined once in
``gateway.explain_defaults`` and re-exported here; :func:`default_time`) are shared by the CLI and
the console's explain form, so the same inputs give the same decision in both.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.context.build import build_context
from gateway.context.geo import GeoResolver
from gateway.errors import GatewayError
from gateway.model import Decision, Identity, IPAddress, RequestContext, RuleTrace
from gateway.policy.compiled import CompiledGrant, CompiledRule
from gateway.response.request_contract import check_request
from gateway.ruleset import RuleSet
from gateway.upstream.bodies import RequestBody


class CountryLookup(Protocol):
    """Where a described request's country comes from: a GeoResolver, or (replay) what was recorded."""

    def country(self, ip: IPAddress) -> str | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Explained:
    decision: Decision
    ctx: RequestContext | None


# Defined in a module that imports nothing, so crmgw's parser can show them cheaply.
from gateway.explain_defaults import DEFAULT_IP as DEFAULT_IP  # noqa: E402 (re-exported)
from gateway.explain_defaults import DEFAULT_METHOD as DEFAULT_METHOD  # noqa: E402 (re-exported)


def default_time(clock: Callable[[], datetime] | None = None) -> datetime:
    """ "Now": the gateway's clock when there is one (the console), else the system's (the CLI)."""
    return clock() if clock is not None else datetime.now(UTC)


def parse_time(text: str | None) -> datetime:
    """ISO 8601 with an offset (``2026-03-02T18:30:00+01:00``); naive times are refused."""
    if not text:
        return default_time()
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset (add e.g. +01:00 or Z)")
    return value


def explain(
    ruleset: RuleSet,
    *,
    user: str,
    method: str,
    path: str,
    at: datetime,
    ip: str | None = DEFAULT_IP,
    mfa: bool = False,
    country: str | None = None,
    geo: CountryLookup | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    auth_method: str = "explain",
    grants: tuple[CompiledGrant, ...] = (),
) -> Explained:
    """Decide one described request; refusals before the rules become deny decisions too, and so do
    the refusals the gateway makes before forwarding (query parameters, the body of a write).

    ``auth_method``: how the described caller authenticated (jwt, api_key, trusted_header, crm_jwt,
    crm_token), for rules with an ``auth_method`` criterion; by default an unknown fact.
    ``grants``: the user's approved access requests as grants (gateway.access), applied when they
    cover the request's operation, as the gateway does."""
    directory_user = ruleset.directory.get(user)
    if directory_user is None:
        return Explained(_deny("user-unknown", ruleset, 401), None)
    if not directory_user.active:
        return Explained(_deny("user-inactive", ruleset), None)
    identity = Identity(
        user=directory_user, method=auth_method, mfa=mfa, forward_credential=auth_method in ("crm_jwt", "crm_token")
    )
    client_ip = ipaddress.ip_address(ip) if ip else None
    if country is None and client_ip is not None:
        country = (geo or GeoResolver()).country(client_ip)
    try:
        ctx, _ = build_context(
            ruleset,
            request_id="explain",
            method=method.upper(),
            raw_target=path,
            client_ip=client_ip,
            country=country,
            now=at,
            identity=identity,
        )
    except GatewayError as exc:
        return Explained(_deny(exc.reason, ruleset, exc.status), None)
    op = ctx.endpoint.operation if ctx.endpoint is not None else None
    decision = ruleset.engine.decide(ctx, tuple(g for g in grants if g.user == user and op in g.operations))
    if decision.allowed:
        try:
            check_request(ruleset, ctx, decision.obligations, method.upper(), RequestBody(body, content_type))
        except GatewayError as exc:
            refused = _deny(exc.reason, ruleset, exc.status)
            return Explained(dataclasses.replace(refused, rules=decision.rules, trace=decision.trace), ctx)
    return Explained(decision, ctx)


def _deny(reason: str, ruleset: RuleSet, status: int = 403) -> Decision:
    return Decision(effect="deny", reason=reason, reasons=(reason,), revision=ruleset.revision, status=status)


def decision_dict(d: Decision, ctx: RequestContext | None = None, ruleset: RuleSet | None = None) -> dict[str, Any]:
    """The decision with the same field names as the audit line. Given the rule set that decided,
    each rule's trace also carries ``condition``: its and/or/not tree with every node's value."""
    rules = ruleset.engine.policy.rules if ruleset is not None and ruleset.revision == d.revision else {}
    out: dict[str, Any] = {
        "effect": d.effect,
        "reason": d.reason,
        "status": None if d.allowed else d.status,
        "rules": list(d.rules),
        "reasons": list(d.reasons),
        "revision": d.revision,
        "shadow": [dataclasses.asdict(s) for s in d.shadow],
        "trace": [_rule_trace(t, rules.get(t.rule) if t.kind != "grant" else None) for t in d.trace],
    }
    if d.allowed:
        out["scope"] = d.obligations.scope
        out["masks"] = [dataclasses.asdict(m) for m in d.obligations.masks]
        approval = d.obligations.approval  # four-eyes (gateway.approvals)
        if approval is not None:
            out["approval"] = {
                "rule": approval.rule,
                "roles": sorted(approval.roles),
                "manager": approval.manager,
                "valid_for": approval.valid_for,
            }
    if ctx is not None:
        out["operation"] = ctx.operation
        out["path"] = ctx.path
        out["client_ip"] = str(ctx.client_ip) if ctx.client_ip else None
        out["country"] = ctx.country
        out["time"] = ctx.now.isoformat()
    return out


def _rule_trace(t: RuleTrace, rule: CompiledRule | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "rule": t.rule,
        "kind": t.kind,
        "mode": t.mode,
        "matched": t.matched,
        "criteria": [dataclasses.asdict(c) for c in t.criteria],
    }
    condition = rule.outline(t.criteria) if rule is not None else None
    if condition is not None:
        entry["condition"] = condition
    return entry


VALUE = {True: "true", False: "false", None: "unknown"}


def trace_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """One rule's trace as indented rows ``{depth, label, result, reason}``: its condition tree when
    known (a ``not`` around a single criterion shares its row: ``not source_ip``), then the criteria
    outside the block (``data_scope``, a grant's), else the flat criteria."""
    rows: list[dict[str, Any]] = []
    condition = entry.get("condition")
    if condition is not None:
        _tree_rows(condition, 0, rows)
    done = sum(1 for row in rows if row["leaf"])
    for c in entry["criteria"][done:]:
        rows.append({"depth": 0, "label": c["criterion"], "result": c["result"], "reason": c["reason"], "leaf": True})
    return rows


def _tree_rows(node: dict[str, Any], depth: int, rows: list[dict[str, Any]]) -> None:
    if "criterion" in node:
        rows.append(
            {
                "depth": depth,
                "label": node["criterion"],
                "result": node["result"],
                "reason": node["reason"],
                "leaf": True,
            }
        )
        return
    child = node["children"][0] if len(node["children"]) == 1 else None
    if node["op"] == "not" and child is not None and "criterion" in child:
        # Shown as the rule reads: ``not: {source_ip: ...}`` is true because source_ip is false.
        reason = f"{child['criterion']} is {VALUE[child['result']]}: {child['reason']}"
        rows.append(
            {
                "depth": depth,
                "label": f"not {child['criterion']}",
                "result": node["result"],
                "reason": reason,
                "leaf": True,
            }
        )
        return
    rows.append({"depth": depth, "label": node["op"], "result": node["result"], "reason": "", "leaf": False})
    for sub in node["children"]:
        _tree_rows(sub, depth + 1, rows)


def render(d: Decision, ctx: RequestContext | None, ruleset: RuleSet | None = None) -> str:
    """Human-readable explanation: verdict first, then every rule with its condition tree."""
    info = decision_dict(d, ctx, ruleset)
    lines = [f"{d.effect.upper()}  reason={d.reason}  rules={','.join(d.rules) or '-'}  revision={d.revision}"]
    if ctx is not None:
        lines.append(
            f"  request: {ctx.method} {ctx.path} -> operation {ctx.operation or '(unmapped)'}; "
            f"ip {info['client_ip'] or 'unknown'} country {ctx.country or '?'}; time {info['time']}"
        )
    if d.allowed:
        masks = ", ".join(f"{m.field}:{m.op}" for m in d.obligations.masks) or "none"
        lines.append(f"  obligations: scope={d.obligations.scope} masks={masks}")
        if d.obligations.approval is not None:
            a = d.obligations.approval
            who = " or ".join(
                ([f"role {', '.join(sorted(a.roles))}"] if a.roles else []) + (["manager"] if a.manager else [])
            )
            lines.append(f"  approval required (rule {a.rule}): approvers {who}, valid for {a.valid_for}s")
    for t in info["trace"]:
        mark = "fired" if t["matched"] else "no"
        lines.append(f"  [{mark:5}] {t['kind']:5} {t['rule']} ({t['mode']})")
        for row in trace_rows(t):
            reason = f" ({row['reason']})" if row["reason"] else ""
            lines.append(f"            {'  ' * row['depth']}{row['label']}: {VALUE[row['result']]}{reason}")
    for s in d.shadow:
        lines.append(f"  shadow: {s.rule} would {s.would} ({s.reason})")
    return "\n".join(lines)
