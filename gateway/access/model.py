"""One access request: a time-boxed grant asked for by a user (or their manager for them), decided
by another person, active until it ends. Pure values: no I/O here.

    pending ──approve──► approved ──until──► (ended: shown as expired, grants nothing)
       │                    └──revoke──► revoked      (by the user, the asker, an approver, or the
       ├──reject──► rejected                           gateway when the user's directory entry changed)
       ├──revoke──► revoked
       └──until──► (lapsed undecided: shown as expired)

Who: the request is made by the user for themselves or by their ``manager:`` (users.yaml) for them.
Approvers are the user's manager as the directory says *now*, or anyone holding one of the
approver roles; **never the user nor whoever asked**. The approved request acts like a grant of
rules/grants.yaml (``CompiledGrant``: deny rules still win), its id is the rule id the decision names.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field

from gateway.alerts.model import iso, new_alert_id, parse_time
from gateway.approvals.model import MAX_NOTE, Refusal, Step, subject_of
from gateway.policy.compiled import CompiledGrant

if TYPE_CHECKING:
    from gateway.identity.directory import Directory
    from gateway.ruleset import RuleSet

Status = Literal["pending", "approved", "rejected", "revoked"]
STANDING = ("pending", "approved")
ID_PREFIX = "access-"
MAX_DURATION = timedelta(days=90)


class AccessError(Refusal):
    """A refused access request or decision: ``reason`` a stable code, ``status`` an HTTP status."""


class AccessRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    rev: int = 1
    status: Status = "pending"
    user: str  # who gets the grant
    requested_by: str  # the user, or their manager
    operations: list[str]
    data_scope: str = "own"
    until: str
    reason: str
    approver_roles: list[str] = Field(default_factory=list)
    manager: str | None = None  # the user's manager when asked (display; checked again on deciding)
    subject: dict[str, Any] = Field(default_factory=dict)  # subject_of(user) when asked / approved
    created_at: str
    decided_by: str | None = None
    decided_at: str | None = None
    note: str | None = None
    revoked_by: str | None = None
    revoked_at: str | None = None
    history: list[Step] = Field(default_factory=list)

    # --- what gateway.approvals.store.SharedStore needs ---------------------------------------
    @property
    def fingerprint(self) -> str:  # every request is its own (no de-duplication)
        return self.id

    @property
    def expires_at(self) -> str:
        return self.until

    @property
    def epoch(self) -> float:
        return parse_time(self.created_at).timestamp()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    # --- reading ----------------------------------------------------------------------------
    def expired(self, now: datetime) -> bool:
        return now >= parse_time(self.until)

    def standing(self, now: datetime) -> bool:
        return self.status in STANDING and not self.expired(now)

    def active(self, now: datetime) -> bool:
        return self.status == "approved" and not self.expired(now)

    def shown_status(self, now: datetime) -> str:
        return "expired" if self.status in STANDING and self.expired(now) else self.status

    def approvers_text(self) -> str:
        parts = [f"{self.user}'s manager ({self.manager or 'none in the directory'})"]
        if self.approver_roles:
            parts.append(f"role {', '.join(self.approver_roles)}")
        return " or ".join(parts)

    def grant(self) -> CompiledGrant:
        """The grant the engine applies (like one of rules/grants.yaml), named by this request's id."""
        return CompiledGrant(
            id=self.id,
            user=self.user,
            operations=frozenset(self.operations),
            until=parse_time(self.until),
            start=parse_time(self.decided_at) if self.decided_at else None,
            scope=self.data_scope,
            reason=self.reason,
            source=f"access request {self.id}",
        )

    def to_view(self, now: datetime) -> dict[str, Any]:
        return {**self.to_dict(), "status": self.shown_status(now)}

    # --- next copies --------------------------------------------------------------------------
    def _next(
        self, now: datetime, actor: str, action: str, step_note: str | None = None, **changes: Any
    ) -> AccessRequest:
        step = Step(time=iso(now), actor=actor, action=action, note=step_note)
        return self.model_copy(update={"rev": self.rev + 1, "history": [*self.history, step], **changes})

    def decided(
        self, *, approve: bool, actor: str, note: str | None, now: datetime, subject: dict[str, Any]
    ) -> AccessRequest:
        action = "approved" if approve else "rejected"
        return self._next(
            now, actor, action, note, status=action, decided_by=actor, decided_at=iso(now), note=note, subject=subject
        )

    def revoked(self, *, actor: str, note: str | None, now: datetime) -> AccessRequest:
        return self._next(
            now,
            actor,
            "revoked",
            note,
            status="revoked",
            revoked_by=actor,
            revoked_at=iso(now),
            note=note if note is not None else self.note,
        )


@overload
def clean_text(text: str | None, what: str, *, required: Literal[True]) -> str: ...
@overload
def clean_text(text: str | None, what: str, *, required: bool = False) -> str | None: ...
def clean_text(text: str | None, what: str, *, required: bool = False) -> str | None:
    """``text`` stripped, None when empty (AccessError when too long, or empty and ``required``)."""
    value = (text or "").strip()
    if len(value) > MAX_NOTE:
        raise AccessError(f"{what}-too-long", f"the {what} is longer than {MAX_NOTE} characters", status=400)
    if required and not value:
        raise AccessError(f"{what}-missing", f"a {what} is required", status=400)
    return value or None


def parse_until(text: str, now: datetime) -> datetime:
    try:
        until = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise AccessError("until-invalid", f"bad date-time {text!r}: use ISO 8601 with an offset", status=400) from None
    if until.tzinfo is None or until.utcoffset() is None:
        raise AccessError("until-invalid", f"date-time {text!r} needs a UTC offset, e.g. +01:00 or Z", status=400)
    if until <= now:
        raise AccessError("until-past", f"'until' {text} is not in the future", status=400)
    if until - now > MAX_DURATION:
        raise AccessError("until-too-far", f"an access request lasts at most {MAX_DURATION.days} days", status=400)
    return until


def new_request(
    *,
    ruleset: RuleSet,
    user: str,
    requested_by: str,
    operations: list[str],
    data_scope: str,
    until: str,
    reason: str,
    approver_roles: list[str],
    now: datetime,
) -> AccessRequest:
    """Validate against the rule set in force (who, which operations, which scope) and build a
    pending request; raises AccessError."""
    from gateway.policy.grants import scope_problem

    directory = ruleset.directory
    entry = directory.get(user)
    if entry is None or not entry.active:
        raise AccessError("user-unknown", f"no active user {user!r} in the directory", status=400)
    if requested_by != user and entry.manager != requested_by:
        raise AccessError(
            "not-allowed-to-request",
            f"{requested_by} may ask only for themselves or for the "
            f"people they manage ({user}'s manager: {entry.manager or 'none'})",
            status=403,
        )
    asker = directory.get(requested_by)
    if asker is None or not asker.active:
        raise AccessError("user-unknown", f"no active user {requested_by!r} in the directory", status=403)
    ops = sorted(dict.fromkeys(operations or []))
    if not ops:
        raise AccessError("operations-missing", "name at least one operation", status=400)
    resources = ruleset.catalogue.operations
    for op in ops:
        if op not in resources:
            raise AccessError("operation-unknown", f"unknown operation {op!r} (exact operation ids)", status=400)
        problem = scope_problem(data_scope, op, resources[op])
        if problem:
            raise AccessError("scope-unsupported", problem, status=400)
    end = parse_until(until, now)
    reason_text = clean_text(reason, "reason", required=True)
    stamp = iso(now)
    return AccessRequest(
        id=ID_PREFIX + new_alert_id(now).lower(),
        user=user,
        requested_by=requested_by,
        operations=ops,
        data_scope=data_scope,
        until=iso(end),
        reason=reason_text,
        approver_roles=sorted(approver_roles),
        manager=entry.manager,
        subject=subject_of(entry),
        created_at=stamp,
        history=[Step(time=stamp, actor=requested_by, action="requested", note=reason_text)],
    )


def may_decide(req: AccessRequest, actor: str, directory: Directory | None) -> bool:
    """An active user other than the user and the asker: the user's manager now, or an approver role."""
    if actor in (req.user, req.requested_by) or directory is None:
        return False
    who = directory.get(actor)
    if who is None or not who.active:
        return False
    if set(req.approver_roles) & who.effective_roles:
        return True
    user = directory.get(req.user)
    return user is not None and user.manager == actor


def may_revoke(req: AccessRequest, actor: str, directory: Directory | None) -> bool:
    """The user (giving it up), the asker, or anyone who may decide it."""
    return actor in (req.user, req.requested_by) or may_decide(req, actor, directory)
