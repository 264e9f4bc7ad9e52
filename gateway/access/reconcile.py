"""Automatic revocation after a directory change (a rules reload; also once at start-up).

Every access request still standing (pending, or approved and not ended) and every four-eyes
approval still standing (pending or approved, not used) remembers the directory entry of its user
when it was asked / approved (``subject``: roles, team, department, status). When the directory in
force says something else -- a role, team, department or status changed, or the user is gone -- it
no longer fits what was decided: it is revoked by ``gateway`` with the reason as note, and one audit
line is written (``kind: access`` / ``kind: approval``, ``via: directory``). An off-boarded
(suspended, removed) user thus loses everything at once; the identity stage already refuses them.

Comparing with the remembered entry rather than with the previous rule set makes this idempotent and
safe across replicas and restarts: the revocation is a compare-and-set, the replica that wins it
writes the audit line, the others find nothing left to do. Approvals from before this field existed
(no ``subject``) are revoked only when their user is gone or not active.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.access import access_record
from gateway.access.model import AccessError
from gateway.approvals.model import SUBJECT_FIELDS, Approval, subject_of
from gateway.approvals.store import StoreUnavailable
from gateway.background import Periodic, cancel_and_wait, spawn

if TYPE_CHECKING:
    from gateway.approvals.store import ApprovalStore
    from gateway.identity.directory import Directory
    from gateway.model import User
    from gateway.ruleset import RuleSet
    from gateway.services import Services

log = logging.getLogger("crmgw.access")
SCAN = 10000
PERIOD = 60.0  # seconds between two runs without a reload


def misfit(subject: dict[str, Any], user: User | None) -> str | None:
    """Why a decision taken for ``subject`` no longer fits the directory entry ``user`` (None: it fits)."""
    if user is None:
        return "user-removed"
    if not user.active:
        return f"user-{user.status}"
    if not subject:
        return None
    now = subject_of(user)
    changed = [f for f in SUBJECT_FIELDS if f in subject and subject[f] != now[f]]
    return "directory-changed: " + ", ".join(changed) if changed else None


async def reconcile(services: Services, directory: Directory) -> list[tuple[str, str, str]]:
    """Revoke what no longer fits ``directory``; returns (kind, id, why) of each revocation made here."""
    done: list[tuple[str, str, str]] = []
    now = services.clock()
    access = services.access
    for req in await access.list(status={"pending", "approved"}, limit=SCAN):
        why = None if req.expired(now) else misfit(req.subject, directory.get(req.user))
        if why is None:
            continue
        try:
            revoked = await access.revoke(req.id, actor="gateway", note=why, system=True)
        except AccessError:
            continue  # ended or revoked meanwhile (another replica)
        services.audit.write(access_record(revoked, event="revoked", actor="gateway", via="directory", now=now))
        done.append(("access", req.id, why))
    approvals = services.approvals
    for a in await approvals.list(status={"pending", "approved"}, limit=SCAN):
        why = None if a.expired(now) else misfit(a.subject, directory.get(a.requester))
        if why is None:
            continue
        revoked_approval = await _revoke_approval(approvals, a.id, why)
        if revoked_approval is not None:
            from gateway.approvals.gate import decision_record

            services.audit.write(decision_record(revoked_approval, actor="gateway", via="directory", now=now))
            done.append(("approval", a.id, why))
    for kind, ident, why in done:
        log.warning("directory change: %s %s revoked (%s)", kind, ident, why)
    return done


async def _revoke_approval(store: ApprovalStore, approval_id: str, why: str) -> Approval | None:
    def compute(current: Approval, now: datetime) -> Approval | None:
        if current.status not in ("pending", "approved") or current.expired(now):
            return None
        return current.revoked(actor="gateway", note=why, now=now)

    try:
        result = await store.change(approval_id, compute)
    except LookupError:
        return None
    return result if result.status == "revoked" else None


class DirectoryWatch:
    """Runs ``reconcile`` once now, after every rules swap and every PERIOD seconds (RuleStore.on_swap calls back from the
    watcher's thread: the work is handed to the event loop). One run at a time; a swap during a run
    queues one more run with the newest directory."""

    def __init__(self, services: Services):
        self.services = services
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        services.store.on_swap(self._swapped)
        self.schedule()
        # Also now and then: a run that found the store unavailable is made up for.
        self._periodic = Periodic("access-reconcile-periodic", PERIOD, self.schedule)
        self._periodic.start()

    def _swapped(self, ruleset: RuleSet) -> None:
        if not self.closed:
            self.loop.call_soon_threadsafe(self.schedule)

    def schedule(self) -> None:
        if self.closed:
            return
        task = spawn("access-reconcile", self._run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        async with self._lock:
            try:
                await reconcile(self.services, self.services.store.current.directory)
            except StoreUnavailable as exc:
                log.error("directory change: revocations not done now (%s); retried at the next reload", exc)
            except Exception:
                log.exception("directory change: reconcile failed")

    async def close(self) -> None:
        self.closed = True
        await self._periodic.stop()
        await asyncio.gather(*(cancel_and_wait(task) for task in list(self._tasks)))
