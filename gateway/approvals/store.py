"""ApprovalStore: four-eyes approvals, durable and shared, following the alerts store's pattern.

This module is what approvals do: the pipeline's gate (use an approval exactly once, or ask for
one) and the decisions (approve, reject). How they are kept — journal first, then Redis, replay,
falling back to the journal for reads — is the mechanism they share with access requests:
``SharedStore`` in gateway/approvals/shared_store.py, re-exported here with ``StoreUnavailable``.

Exactly once: consuming is a compare-and-set on ``rev`` inside Redis, so when two instances see
one approval and both try to use it, one write wins and the other re-reads a consumed approval
(its request then needs a new one). Without Redis configured the store is one process's (journal +
memory under a lock). With Redis configured but unreachable, the gate and decisions refuse
(``ApprovalsUnavailable``, 503) instead of risking a second use; listing falls back to the journal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.approvals.model import Approval, ApprovalError, check_decision, clean_note
from gateway.approvals.shared_store import MAX_ATTEMPTS
from gateway.approvals.shared_store import SharedStore as SharedStore  # re-exported: approvals/__init__, docs
from gateway.approvals.shared_store import StoreUnavailable as StoreUnavailable  # re-exported: access, cli

if TYPE_CHECKING:
    from gateway.identity.directory import Directory


class ApprovalsUnavailable(StoreUnavailable):
    """The shared store or the journal cannot be used: refuse rather than risk a second use (503)."""


class ApprovalStore(SharedStore[Approval]):
    model = Approval
    key = "approval"
    prefix = "crmgw:{approvals}:"  # a hash tag: one Redis Cluster slot (mirror.py)
    unavailable = ApprovalsUnavailable

    # --- the gate (the pipeline) --------------------------------------------------------------
    async def gate(self, *, fp: str, make: Callable[[], Approval], request_id: str) -> tuple[str, Approval]:
        """What the request with fingerprint ``fp`` may do now:

        ``consumed`` (an approval was used up by this request: forward it), ``pending`` (waiting for a
        decision), ``rejected``, ``expired`` (just found lapsed), or ``required`` (a new pending
        approval was made with ``make()``). Raises ApprovalsUnavailable.
        """
        async with self._lock:
            await self._shared()
            for _ in range(MAX_ATTEMPTS):
                now = self.clock()
                current = await self._for_fp(fp)
                if current is not None and current.status in ("pending", "approved") and current.expired(now):
                    lapsed = current.lapsed(request_id=request_id, now=now)
                    if await self._commit(lapsed, expected=current.rev, now=now):
                        return "expired", lapsed
                    continue
                if current is not None and current.standing(now):
                    if current.status != "approved":
                        return current.status, current
                    used = current.consumed(request_id=request_id, now=now)
                    if await self._commit(used, expected=current.rev, now=now):
                        return "consumed", used
                    continue  # another instance used it first: read again
                fresh = make()
                if await self._commit(fresh, mode="create", now=now):
                    return "required", fresh
        raise ApprovalsUnavailable(f"approvals: request {fp[:12]} kept changing under this instance")

    # --- decisions (console, CLI) ---------------------------------------------------------------
    async def decide(
        self, approval_id: str, *, approve: bool, actor: str, note: str | None, directory: Directory | None
    ) -> Approval:
        """Approve or reject as ``actor``; raises ApprovalError (not found, not pending, expired,
        own request, not an approver) or ApprovalsUnavailable."""
        note = clean_note(note)
        async with self._lock:
            await self._shared()
            for _ in range(MAX_ATTEMPTS):
                now = self.clock()
                current = await self._get(approval_id)
                if current is None:
                    raise ApprovalError("approval-unknown", f"no approval {approval_id}", status=404)
                check_decision(current, actor, directory, now)
                updated = current.decided(approve=approve, actor=actor, note=note, now=now)
                if await self._commit(updated, expected=current.rev, now=now):
                    return updated
        raise ApprovalsUnavailable(f"approval {approval_id} kept changing; try again")
