"""The pipeline's four-eyes check, and the audit records of approval decisions.

Called by gateway/pipeline.py once a request is allowed by a rule with an ``approval:`` obligation
and its body has been read and checked, before anything is sent to the CRM:

    fingerprint = sha256(user, method, path, query (order-free), sha256(body))
    newest approval of that fingerprint:
      none, consumed, expired, or a rejection past its validity -> a new pending approval: 403 approval-required
      pending (within validity)                                  -> the same id again:     403 approval-required
      approved (within validity)                                 -> used up atomically, the request goes on
      rejected (within validity)                                 -> 403 approval-rejected
      pending/approved past its validity                         -> marked expired:        403 approval-expired

An approval is used up before the request is forwarded: if the CRM then fails, the approval is
spent (never a second use). The refusal's audit line carries ``approval: {id, state, rule}``; so does
the line of the request that used it (``state: consumed``, with who approved). Decisions taken in
the console or the CLI write an audit line of their own (``kind: approval``, no ``user`` key, so
behaviour counters and detectors do not count them as requests).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.alerts.model import iso
from gateway.approvals.model import Approval, fingerprint, new_approval, subject_of
from gateway.errors import Forbidden, Unavailable
from gateway.upstream.bodies import RequestBody

if TYPE_CHECKING:
    from gateway.model import ApprovalRequirement, Flow, RequestContext
    from gateway.services import Services

REASONS = {
    "required": "approval-required",
    "pending": "approval-required",
    "rejected": "approval-rejected",
    "expired": "approval-expired",
}


class ApprovalRefused(Forbidden):
    """403 with the approval's id in the body (``approval_id``), so the client can point an approver to it."""

    def __init__(self, reason: str, approval_id: str, rule: str):
        super().__init__(reason, rule=rule)
        self.payload = {"approval_id": approval_id}


async def check(
    services: Services, flow: Flow, ctx: RequestContext, requirement: ApprovalRequirement, body: RequestBody
) -> None:
    """Raises ApprovalRefused (403) or Unavailable (503 approvals-unavailable); returns when the
    request used up an approval and may go on. ``body``: the pipeline's one request body; an approval
    is for its exact bytes, so it is hashed, never parsed."""
    from gateway.approvals.store import ApprovalsUnavailable

    store = services.approvals
    assert ctx.identity is not None, "the pipeline asks for an approval once the caller is identified"
    user = ctx.identity.user
    fp, body_sha = fingerprint(user.id, ctx.method, ctx.path, ctx.query, body.raw)
    directory = flow.ruleset.directory if flow.ruleset is not None else None
    entry = directory.get(user.id) if directory is not None else None
    request = {
        "method": ctx.method,
        "path": ctx.path,
        "query": dict(ctx.query),
        "body_sha256": body_sha,
        "body_bytes": len(body.raw),
        "operation": ctx.operation,
        "subject": subject_of(entry) if entry is not None else {},
    }

    def make() -> Approval:
        return new_approval(
            requester=user.id,
            manager=entry.manager if entry is not None else user.manager,
            fingerprint=fp,
            request=request,
            requirement=requirement,
            request_id=flow.request_id,
            now=services.clock(),
        )

    try:
        outcome, approval = await store.gate(fp=fp, make=make, request_id=flow.request_id)
    except ApprovalsUnavailable as exc:
        raise Unavailable("approvals-unavailable", detail=str(exc), rule=requirement.rule) from None
    flow.approval = {"id": approval.id, "state": outcome, "rule": requirement.rule}
    if outcome == "consumed":
        flow.approval.update(approved_by=approval.decided_by, approved_at=approval.decided_at)
        return
    raise ApprovalRefused(REASONS[outcome], approval.id, requirement.rule)


def decision_record(approval: Approval, *, actor: str, via: str, now: datetime | None = None) -> dict[str, Any]:
    """The audit line of an approval, a rejection or a revocation (who, note, what was decided on)."""
    action = approval.status if approval.status in ("approved", "rejected", "revoked") else "rejected"
    return {
        "time": iso(now or datetime.now(UTC)),
        "kind": "approval",
        "event": f"approval.{action}",
        "approval_id": approval.id,
        "actor": actor,
        "requester": approval.requester,
        "note": approval.note,
        "rule": approval.rule,
        "operation": approval.operation,
        "method": approval.method,
        "path": approval.path,
        "query": approval.query,
        "body_sha256": approval.body_sha256,
        "status": approval.status,
        "expires_at": approval.expires_at,
        "via": via,
    }
