"""Builds the audit record of one decision from the request's Flow.

Field names are the same everywhere a decision is shown (audit line, ``crmgw explain``, the
console): ``decision_id``, ``effect``, ``reason``, ``rules``, ``reasons``, ``shadow``, ``revision``.

A streamed export has two lines: :func:`stream_start_record` before its first row is sent (a gateway
killed mid-export still leaves that one), then :func:`audit_record` at its end, as every request.
The start line says ``"phase": "stream-started"`` and has no ``decision_id`` nor counts: readers that
count, replay or list requests skip it (``is_stream_start``); the hash chain holds both lines.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from typing import Any

from detectors.events import PHASE_KEY, STREAM_STARTED
from gateway import __version__
from gateway.model import Flow

# The text of the last whole second formatted (issue 14: requests of one second share it).
_second: tuple[int, str] = (0, datetime.fromtimestamp(0, UTC).isoformat()[:-6])


def iso_millis(ts: float) -> str:
    """``datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")``, character for
    character, at a third of the cost: the second's text is formatted once per second, and the
    microseconds are rounded as ``fromtimestamp`` rounds them (half to even) before truncating
    to milliseconds (tests/audit/test_events_time.py compares both)."""
    global _second
    if not math.isfinite(ts):
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")  # raises like it
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1e6)
    second = int(whole)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    elif micros < 0:
        second, micros = second - 1, micros + 1_000_000
    cached_second, text = _second
    if cached_second != second:
        text = datetime.fromtimestamp(second, UTC).isoformat()[:-6]  # without "+00:00"
        _second = (second, text)
    return f"{text}.{micros // 1000:03d}+00:00"


@functools.lru_cache(maxsize=1024)
def _sorted_roles(roles: frozenset[str]) -> tuple[str, ...]:
    """A caller's roles in order, sorted once per role set (a frozenset keeps its hash)."""
    return tuple(sorted(roles))


def audit_record(flow: Flow) -> dict[str, Any]:
    ctx, decision, identity = flow.ctx, flow.decision, flow.identity
    user = identity.user if identity else None
    record: dict[str, Any] = {
        "time": iso_millis(flow.received_at),
        "decision_id": flow.request_id,
        "request_id": flow.request_id,
        "labels": {"version": __version__, "revision": decision.revision if decision else None},
        "user": user.id if user else None,
        "roles": list(_sorted_roles(identity.roles)) if identity else [],
        "auth": identity.method if identity else None,
        "mfa": identity.mfa if identity else False,
        "team": user.team if user else None,
        "timezone": user.timezone if user else None,
        # flow.client_ip is the pipeline's text of ctx.client_ip (formatting an address is not free)
        "client_ip": flow.client_ip or (str(ctx.client_ip) if ctx and ctx.client_ip else None),
        "country": ctx.country if ctx else None,
        "method": flow.method,
        "path": ctx.path if ctx else flow.raw_target[:2048],
        "query": dict(ctx.query) if ctx and ctx.query else {},
        "user_agent": ctx.user_agent[:512] if ctx else None,
        "operation": ctx.operation if ctx else None,
        "resource_id": (ctx.path_params.get("id") if ctx else None),
        "effect": decision.effect if decision else "deny",
        "reason": (flow.error or decision.reason) if decision else (flow.error or "internal-error"),
        "rules": list(decision.rules) if decision else [],
        "reasons": list(decision.reasons) if decision else [],
        "scope": decision.obligations.scope if decision and decision.allowed else None,
        "shadow": [{"rule": s.rule, "would": s.would, "reason": s.reason} for s in decision.shadow] if decision else [],
        "status": flow.status,
        "upstream_status": flow.upstream_status,
        # service | personal | caller | none: which credential went to the CRM, never the secret
        "upstream_credential": flow.upstream_credential,
        "records_seen": flow.records_seen,
        "records_returned": flow.records_returned,
        "record_ids": list(flow.record_ids[:200]),
        "targets": flow.targets,
        "fields_masked": sorted(flow.fields_masked),
        "bytes_out": flow.bytes_out,
        "latency_ms": round(flow.elapsed_ms(), 3),
    }
    if flow.committed_out_of_scope:
        # Allowed, forwarded and committed by the CRM: never "deny" next to a 2xx upstream status.
        record["effect"] = "allow"
        record["reason"] = "write-committed-out-of-scope"
        record["write"] = {"committed": True, "out_of_scope": True}
    elif flow.error and decision and decision.allowed:
        # allowed by the rules but refused by the gateway (out-of-scope record, unenforceable, ...)
        record["effect"] = "deny"
    if flow.signals:
        record["signals"] = flow.signals
    if flow.approval:
        record["approval"] = flow.approval  # four-eyes: {id, state, rule[, approved_by]} (gateway.approvals)
    return record


# What the start line of a streamed export keeps of the request's line: who, what, the decision.
_START_FIELDS = (
    "request_id",
    "labels",
    "user",
    "roles",
    "auth",
    "mfa",
    "team",
    "timezone",
    "client_ip",
    "country",
    "method",
    "path",
    "query",
    "user_agent",
    "operation",
    "resource_id",
    "effect",
    "reason",
    "rules",
    "reasons",
    "scope",
    "upstream_status",
    "upstream_credential",
)


def stream_start_record(flow: Flow) -> dict[str, Any]:
    """The line written before a streamed export's first row: the request id, identity, decision and
    operation, marked as the start of that request (``phase``) so nothing counts it as one. The same
    ``time`` as the request's final line (when it was received), which comes after it in the file."""
    full = audit_record(flow)
    record = {"time": full["time"], PHASE_KEY: STREAM_STARTED}  # "time" first: the search reads it so
    record.update((key, full[key]) for key in _START_FIELDS)
    return record
