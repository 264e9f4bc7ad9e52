"""AccessStore: access requests, durable and shared like approvals (gateway.approvals.store.SharedStore:
journal + fsync first, then one Redis script per change, compare-and-set on ``rev``).

    crmgw:{access}:a:<id>   the request (hash {rev, status, expires, json}); crmgw:{access}:idx the listing

How the pipeline finds a caller's grants without a Redis round trip on every request: a snapshot of
the approved, unexpired requests by user, refreshed every ``refresh_interval`` (1 s) and after every
change this process makes. A request that the snapshot says may use a grant re-reads that grant from
Redis before it is applied (one HGET), so a revocation made anywhere (another replica, the CLI) ends
it at once; a grant approved elsewhere is seen within a refresh. Redis configured but unreachable:
no access-request grant applies (fail closed; rules/grants.yaml keeps working).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.access.model import AccessError, AccessRequest, clean_text, may_decide, may_revoke
from gateway.approvals.model import subject_of
from gateway.approvals.shared_store import Compute, SharedStore, StoreUnavailable
from gateway.background import Periodic
from gateway.policy.compiled import CompiledGrant
from gateway.redishealth import REDIS_ERRORS

if TYPE_CHECKING:
    from gateway.alerts.journal import Journal
    from gateway.identity.directory import Directory
    from gateway.model import RequestContext
    from gateway.redisconn import RedisClient

log = logging.getLogger("crmgw.access")
MAX_ACTIVE = 10000


class AccessUnavailable(StoreUnavailable):
    """The access requests' journal or shared store cannot be used (503 access-requests-unavailable)."""


class AccessStore(SharedStore[AccessRequest]):
    model = AccessRequest
    key = "access_request"
    prefix = "crmgw:{access}:"  # a hash tag: one Redis Cluster slot (approvals/mirror.py)
    unavailable = AccessUnavailable

    def __init__(
        self,
        journal: Journal,
        *,
        redis: RedisClient | None = None,
        writer: str = "local",
        clock: Callable[[], datetime] | None = None,
        check_interval: float = 2.0,
        refresh_interval: float = 1.0,
    ):
        super().__init__(journal, redis=redis, writer=writer, clock=clock, check_interval=check_interval)
        self.refresh_interval = refresh_interval
        self.active: dict[str, tuple[AccessRequest, ...]] = {}  # user -> approved, unexpired
        self._refresher = Periodic("access-requests-refresh", refresh_interval, self.refresh_active)

    async def start(self, *, background: bool = True) -> None:
        await super().start(background=background)
        await self.refresh_active()
        if background:
            self._refresher.start()

    async def close(self) -> None:
        await self._refresher.stop()
        await super().close()

    async def refresh_active(self) -> None:
        now = self.clock()
        found = await self.list(status={"approved"}, limit=MAX_ACTIVE)
        by_user: dict[str, list[AccessRequest]] = {}
        for req in found:
            if req.active(now):
                by_user.setdefault(req.user, []).append(req)
        self.active = {user: tuple(reqs) for user, reqs in by_user.items()}

    # --- the pipeline and explain -------------------------------------------------------------
    async def grants_for(self, ctx: RequestContext) -> tuple[CompiledGrant, ...]:
        """The caller's approved access requests for this operation, as CompiledGrants, each re-read
        from the shared store (a revocation anywhere ends it at once)."""
        identity = ctx.identity
        if identity is None or ctx.endpoint is None:
            return ()
        operation = ctx.endpoint.operation
        candidates = [r for r in self.active.get(identity.user.id, ()) if operation in r.operations]
        if not candidates:
            return ()
        if self.mirror is not None and not self.redis_up:
            return ()  # fail closed: a revocation elsewhere could not be seen
        out: list[CompiledGrant] = []
        for cached in candidates:
            try:
                fresh = await self._get(cached.id)
            except REDIS_ERRORS as exc:
                self._down(exc)
                return ()
            if fresh is not None and fresh.status == "approved":
                out.append(fresh.grant())
        return tuple(out)

    # --- changes (API, console, CLI, reconcile) -------------------------------------------------
    async def request(self, req: AccessRequest) -> AccessRequest:
        return await self.create(req)

    async def decide(
        self, request_id: str, *, approve: bool, actor: str, note: str | None, directory: Directory
    ) -> AccessRequest:
        note = clean_text(note, "note")

        def compute(current: AccessRequest, now: datetime) -> AccessRequest:
            if current.status != "pending":
                raise AccessError(
                    f"access-{current.status}", f"access request {current.id} is {current.status}, not pending"
                )
            if current.expired(now):
                raise AccessError("access-expired", f"access request {current.id} ended at {current.until}")
            if actor in (current.user, current.requested_by):
                raise AccessError(
                    "own-request",
                    "nobody decides an access request for themselves or that they asked for: another person must",
                    status=403,
                )
            if not may_decide(current, actor, directory):
                raise AccessError(
                    "not-an-approver",
                    f"{actor} may not decide this request (approvers: {current.approvers_text()})",
                    status=403,
                )
            user = directory.get(current.user)
            if approve and (user is None or not user.active):
                raise AccessError("user-inactive", f"{current.user} is not an active user")
            return current.decided(
                approve=approve,
                actor=actor,
                note=note,
                now=now,
                subject=subject_of(user) if user is not None else current.subject,
            )

        return await self._changed(request_id, compute)

    async def revoke(
        self, request_id: str, *, actor: str, note: str | None, directory: Directory | None = None, system: bool = False
    ) -> AccessRequest:
        """Revoke a pending or approved request (``system``: the gateway itself, no permission check)."""
        note = clean_text(note, "note")

        def compute(current: AccessRequest, now: datetime) -> AccessRequest:
            if current.status not in ("pending", "approved") or current.expired(now):
                raise AccessError(
                    f"access-{current.shown_status(now)}",
                    f"access request {current.id} is {current.shown_status(now)}: nothing to revoke",
                )
            if not system and not may_revoke(current, actor, directory):
                raise AccessError(
                    "not-allowed-to-revoke", f"{actor} may not revoke access request {current.id}", status=403
                )
            return current.revoked(actor=actor, note=note, now=now)

        return await self._changed(request_id, compute)

    async def _changed(self, request_id: str, compute: Compute[AccessRequest]) -> AccessRequest:
        try:
            updated = await self.change(request_id, compute)
        except LookupError:
            raise AccessError("access-unknown", f"no access request {request_id}", status=404) from None
        await self.refresh_active()
        return updated
