"""Access requests: time-boxed grants asked for at run time, decided by another person (issue 13).

    model.py      AccessRequest, its life cycle, who may ask / decide / revoke (never the user or the asker)
    store.py      AccessStore: gateway.approvals' SharedStore (journal first, then Redis); the snapshot
                  of active grants the pipeline reads
    reconcile.py  after every rules reload: revoke what a directory change no longer fits (and approvals)
    api.py        POST/GET {admin prefix}/api/access-requests, /{id}/approve|reject|revoke
    cli.py        ``crmgw access request|list|approve|reject|revoke``
    (the console page is gateway/console/pages_access.py)

An approved request acts like a grant of rules/grants.yaml for its user, its operations and data
scope, from its approval until ``until`` (deny rules still win); the decision names it by its id
(``access-...``). Where: ``access_requests.jsonl`` beside the approvals journal; Redis is the
approvals' one. Audit: every change writes a line ``kind: access`` (no ``user`` key).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.alerts.model import iso

if TYPE_CHECKING:
    from gateway.access.model import AccessRequest
    from gateway.access.store import AccessStore
    from gateway.redisconn import RedisConnections
    from gateway.settings import Settings

APPROVER_ROLES = ("admin",)  # besides the user's manager


def access_journal(settings: Settings) -> Path:
    from gateway.approvals import approvals_journal

    return approvals_journal(settings).with_name("access_requests.jsonl")


def approver_roles(settings: Settings) -> list[str]:
    """The roles that may decide any access request (a setting could replace this constant)."""
    return list(APPROVER_ROLES)


async def open_access_store(
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
    background: bool = True,
    redis_url: str | None = None,
    redis: RedisConnections | None = None,
) -> AccessStore:
    """A started AccessStore (``redis``: the gateway's connections, as for open_approval_store)."""
    from gateway.access.store import AccessStore
    from gateway.approvals import open_shared_store

    return await open_shared_store(
        AccessStore,
        access_journal(settings),
        settings,
        clock=clock,
        background=background,
        redis_url=redis_url,
        redis=redis,
    )


def access_record(
    req: AccessRequest, *, event: str, actor: str, via: str, now: datetime | None = None
) -> dict[str, Any]:
    """The audit line of a change of an access request."""
    return {
        "time": iso(now or datetime.now(UTC)),
        "kind": "access",
        "event": f"access.{event}",
        "access_request": req.id,
        "actor": actor,
        "grantee": req.user,
        "requested_by": req.requested_by,
        "operations": list(req.operations),
        "data_scope": req.data_scope,
        "until": req.until,
        "reason": req.reason,
        "note": req.note,
        "status": req.status,
        "via": via,
    }
