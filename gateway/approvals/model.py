"""One four-eyes approval, its life cycle, the request fingerprint and who may decide it.

    pending ──approve──► approved ──the same request again──► consumed   (passes exactly once)
       │                    │
       ├──reject──► rejected (refused until the request's validity ends; then a new one may be asked)
       └──validity over──► expired   (found out by the next identical request, which is refused)
    pending / approved ──the requester's directory entry changed──► revoked   (gateway.access.reconcile)

``valid_for`` (the rule's) bounds both waits: a pending request lapses ``valid_for`` after it was
made, an approval ``valid_for`` after it was given. Pure values: no I/O here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gateway.alerts.model import iso, new_alert_id, parse_time

if TYPE_CHECKING:
    from gateway.identity.directory import Directory
    from gateway.model import ApprovalRequirement, User

Status = Literal["pending", "approved", "rejected", "consumed", "expired", "revoked"]
STATUSES: tuple[str, ...] = ("pending", "approved", "rejected", "consumed", "expired", "revoked")
# While one of these is within its validity it answers for its fingerprint (no new request is made).
STANDING = ("pending", "approved", "rejected")
MAX_NOTE = 2000


class Versioned(Protocol):
    """What gateway.approvals.store.SharedStore and its Redis mirror need of a record: an Approval or
    a gateway.access AccessRequest (a frozen pydantic model, one new copy per change)."""

    @property
    def id(self) -> str: ...
    @property
    def rev(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...  # one standing record per fingerprint (an approval: its request)
    @property
    def expires_at(self) -> str: ...
    @property
    def epoch(self) -> float: ...  # created, for the newest-first listing
    def expired(self, now: datetime) -> bool: ...
    def standing(self, now: datetime) -> bool: ...
    def to_dict(self) -> dict[str, Any]: ...
    @classmethod
    def model_validate(cls, obj: Any) -> Self: ...
    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray) -> Self: ...


class Refusal(Exception):
    """A refused decision or request: ``reason`` is a stable code (console, CLI, API), ``status`` an
    HTTP status. ApprovalError here, AccessError in gateway.access."""

    def __init__(self, reason: str, message: str, status: int = 409):
        super().__init__(message)
        self.reason, self.message, self.status = reason, message, status


class ApprovalError(Refusal):
    """A refused decision on a four-eyes approval."""


class Step(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    time: str
    actor: str
    action: str  # requested | approved | rejected | consumed | expired | revoked
    note: str | None = None
    request_id: str | None = None


class Approval(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    rev: int = 1
    status: Status = "pending"
    fingerprint: str
    requester: str
    method: str
    path: str
    query: dict[str, str] = Field(default_factory=dict)
    body_sha256: str
    body_bytes: int = 0
    operation: str | None = None
    rule: str
    approver_roles: list[str] = Field(default_factory=list)
    approver_manager: bool = False
    manager: str | None = None  # the requester's manager when asked (display; checked again on deciding)
    # the requester's directory entry when asked (gateway.access.reconcile revokes when it changes)
    subject: dict[str, Any] = Field(default_factory=dict)
    valid_for: int
    created_at: str
    expires_at: str  # pending: created + valid_for; approved: approved + valid_for
    request_id: str | None = None  # the refused request that asked for it
    decided_by: str | None = None
    decided_at: str | None = None
    note: str | None = None
    consumed_at: str | None = None
    consumed_by: str | None = None  # request id of the request that used it
    history: list[Step] = Field(default_factory=list)

    # --- reading ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def epoch(self) -> float:
        return parse_time(self.created_at).timestamp()

    def expired(self, now: datetime) -> bool:
        return now >= parse_time(self.expires_at)

    def standing(self, now: datetime) -> bool:
        """Does this approval still answer for its request (no new one is created)?"""
        return self.status in STANDING and not self.expired(now)

    def approvers_text(self) -> str:
        parts = [f"role {', '.join(self.approver_roles)}"] if self.approver_roles else []
        if self.approver_manager:
            parts.append(f"{self.requester}'s manager ({self.manager or 'none in the directory'})")
        return " or ".join(parts)

    # --- next copies --------------------------------------------------------------------------
    def _next(
        self,
        stamp: str,
        actor: str,
        action: str,
        step_note: str | None = None,
        request_id: str | None = None,
        **changes: Any,
    ) -> Approval:
        step = Step(time=stamp, actor=actor, action=action, note=step_note, request_id=request_id)
        return self.model_copy(update={"rev": self.rev + 1, "history": [*self.history, step], **changes})

    def decided(self, *, approve: bool, actor: str, note: str | None, now: datetime) -> Approval:
        stamp = iso(now)
        changes: dict[str, Any] = {
            "status": "approved" if approve else "rejected",
            "decided_by": actor,
            "decided_at": stamp,
            "note": note,
        }
        if approve:  # the approval itself is valid for valid_for from now
            changes["expires_at"] = iso(now + timedelta(seconds=self.valid_for))
        return self._next(stamp, actor, "approved" if approve else "rejected", note, **changes)

    def consumed(self, *, request_id: str, now: datetime) -> Approval:
        stamp = iso(now)
        return self._next(
            stamp,
            self.requester,
            "consumed",
            request_id=request_id,
            status="consumed",
            consumed_at=stamp,
            consumed_by=request_id,
        )

    def revoked(self, *, actor: str, note: str, now: datetime) -> Approval:
        return self._next(iso(now), actor, "revoked", note, status="revoked")

    def lapsed(self, *, request_id: str, now: datetime) -> Approval:
        return self._next(iso(now), "gateway", "expired", request_id=request_id, status="expired")


def new_approval(
    *,
    requester: str,
    manager: str | None,
    fingerprint: str,
    request: Mapping[str, Any],
    requirement: ApprovalRequirement,
    request_id: str,
    now: datetime,
) -> Approval:
    stamp = iso(now)
    return Approval(
        id=new_alert_id(now),
        fingerprint=fingerprint,
        requester=requester,
        manager=manager,
        rule=requirement.rule,
        approver_roles=sorted(requirement.roles),
        approver_manager=requirement.manager,
        valid_for=requirement.valid_for,
        created_at=stamp,
        expires_at=iso(now + timedelta(seconds=requirement.valid_for)),
        request_id=request_id,
        history=[Step(time=stamp, actor=requester, action="requested", request_id=request_id)],
        **request,
    )


def fingerprint(user: str, method: str, path: str, query: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """(fingerprint, body sha256): the same user, method, path, query (order-free) and body bytes."""
    body_sha = hashlib.sha256(body).hexdigest()
    canonical = orjson.dumps([user, method, path, sorted(query.items()), body_sha])
    return hashlib.sha256(canonical).hexdigest(), body_sha


def check_decision(approval: Approval, actor: str, directory: Directory | None, now: datetime) -> None:
    """Raise ApprovalError unless ``actor`` may approve or reject ``approval`` now."""
    if approval.status != "pending":
        raise ApprovalError(f"approval-{approval.status}", f"approval {approval.id} is {approval.status}, not pending")
    if approval.expired(now):
        raise ApprovalError("approval-expired", f"approval {approval.id} expired at {approval.expires_at}")
    if actor == approval.requester:
        raise ApprovalError(
            "own-request", "nobody approves or rejects their own request: another person must", status=403
        )
    if not may_approve(approval, actor, directory):
        raise ApprovalError(
            "not-an-approver",
            f"{actor} may not decide this request (approvers: {approval.approvers_text()})",
            status=403,
        )


def may_approve(approval: Approval, actor: str, directory: Directory | None) -> bool:
    """An active directory user other than the requester, holding an approver role, or (when the rule
    says so) the requester's manager as the directory says *now*."""
    if actor == approval.requester or directory is None:
        return False
    user = directory.get(actor)
    if user is None or not user.active:
        return False
    if set(approval.approver_roles) & user.effective_roles:
        return True
    requester = directory.get(approval.requester)
    return approval.approver_manager and requester is not None and requester.manager == actor


def clean_note(note: str | None) -> str | None:
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise ApprovalError("note-too-long", f"the note is longer than {MAX_NOTE} characters", status=400)
    return text or None


# What of a directory entry a request (an approval, an access request) was decided on: a change of
# these fields revokes it (gateway.access.reconcile).
SUBJECT_FIELDS = ("roles", "team", "department", "status")


def subject_of(user: User) -> dict[str, Any]:
    """The directory facts a request was decided on (see SUBJECT_FIELDS)."""
    return {"roles": sorted(user.roles), "team": user.team, "department": user.department, "status": user.status}
