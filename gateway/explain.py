"""``crmgw explain`` and the policy unit tests: decide a described request without any traffic.

Both go through ``pipeline.build_context`` and the live ``PolicyEngine`` so what an admin is told
is exactly what the running gateway would do (same normalisation, same catalogue, same rules).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import datetime, timezone

from gateway.context.geo import GeoResolver
from gateway.errors import GatewayError
from gateway.model import Decision, Identity, RequestContext
from gateway.pipeline import build_context
from gateway.ruleset import RuleSet
from gateway.upstream.contract import check_request


@dataclasses.dataclass(frozen=True, slots=True)
class Explained:
    decision: Decision
    ctx: RequestContext | None


def parse_time(text: str | None) -> datetime:
    """ISO 8601 with an offset (``2026-03-02T18:30:00+01:00``); naive times are refused."""
    if not text:
        return datetime.now(timezone.utc)
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
    ip: str | None = "127.0.0.1",
    mfa: bool = False,
    country: str | None = None,
    geo: GeoResolver | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Explained:
    """Decide one described request; refusals before the rules become deny decisions too, and so do
    the refusals the gateway makes before forwarding (query parameters, the body of a write)."""
    directory_user = ruleset.directory.get(user)
    if directory_user is None:
        return Explained(_deny("user-unknown", ruleset, 401), None)
    if not directory_user.active:
        return Explained(_deny("user-inactive", ruleset), None)
    identity = Identity(user=directory_user, method="explain", mfa=mfa)
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
    decision = ruleset.engine.decide(ctx)
    if decision.allowed:
        try:
            check_request(ruleset, ctx, decision.obligations, method.upper(), body, content_type)
        except GatewayError as exc:
            refused = _deny(exc.reason, ruleset, exc.status)
            return Explained(dataclasses.replace(refused, rules=decision.rules, trace=decision.trace), ctx)
    return Explained(decision, ctx)


def _deny(reason: str, ruleset: RuleSet, status: int = 403) -> Decision:
    return Decision(effect="deny", reason=reason, reasons=(reason,), revision=ruleset.revision, status=status)


def decision_dict(d: Decision, ctx: RequestContext | None = None) -> dict:
    """The decision with the same field names as the audit line."""
    out = {
        "effect": d.effect,
        "reason": d.reason,
        "status": None if d.allowed else d.status,
        "rules": list(d.rules),
        "reasons": list(d.reasons),
        "revision": d.revision,
        "shadow": [dataclasses.asdict(s) for s in d.shadow],
        "trace": [
            {
                "rule": t.rule,
                "kind": t.kind,
                "mode": t.mode,
                "matched": t.matched,
                "criteria": [dataclasses.asdict(c) for c in t.criteria],
            }
            for t in d.trace
        ],
    }
    if d.allowed:
        out["scope"] = d.obligations.scope
        out["masks"] = [dataclasses.asdict(m) for m in d.obligations.masks]
    if ctx is not None:
        out["operation"] = ctx.operation
        out["path"] = ctx.path
        out["client_ip"] = str(ctx.client_ip) if ctx.client_ip else None
        out["country"] = ctx.country
        out["time"] = ctx.now.isoformat()
    return out


def render(d: Decision, ctx: RequestContext | None) -> str:
    """Human-readable explanation: verdict first, then every rule and criterion."""
    info = decision_dict(d, ctx)
    lines = [f"{d.effect.upper()}  reason={d.reason}  rules={','.join(d.rules) or '-'}  revision={d.revision}"]
    if ctx is not None:
        lines.append(
            f"  request: {ctx.method} {ctx.path} -> operation {ctx.operation or '(unmapped)'}; "
            f"ip {info['client_ip']} country {ctx.country or '?'}; time {info['time']}"
        )
    if d.allowed:
        masks = ", ".join(f"{m.field}:{m.op}" for m in d.obligations.masks) or "none"
        lines.append(f"  obligations: scope={d.obligations.scope} masks={masks}")
    for t in d.trace:
        mark = "fired" if t.matched else "no"
        lines.append(f"  [{mark:5}] {t.kind:5} {t.rule} ({t.mode})")
        for c in t.criteria:
            value = {True: "true", False: "false", None: "unknown"}[c.result]
            lines.append(f"            {c.criterion}: {value} ({c.reason})")
    for s in d.shadow:
        lines.append(f"  shadow: {s.rule} would {s.would} ({s.reason})")
    return "\n".join(lines)
