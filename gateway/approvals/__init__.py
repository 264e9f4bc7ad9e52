"""Four-eyes approvals: a policy obligation (``approval:`` in a rule) that holds a request until a
second person approved that exact request; it then passes once.

    model.py   Approval, its life cycle, the request fingerprint, who may decide (never the requester)
    mirror.py  the shared copy in Redis (one Lua script per change: one pending per request, CAS)
    store.py   ApprovalStore: the gate's one-pass use of an approval, the decisions
    shared_store.py  SharedStore (approvals and access requests): journal first (fsync), then
               Redis; replay; view.py  the journal's local view when Redis is away
    gate.py    the pipeline's check, once the request body is read; the audit records of decisions
    cli.py     ``crmgw approvals list|approve|reject``
    (the console page is gateway/console/pages_approvals.py)

Where: the journal is ``approvals.jsonl`` beside the alerts journal (``alerts.journal``, default
``var/alerts.jsonl`` -> ``var/approvals.jsonl``); Redis is the alerts' (``alerts.redis_url``, else
``redis_url``). Without Redis the approvals belong to one gateway process.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from gateway.approvals.store import ApprovalStore, SharedStore
    from gateway.redisconn import RedisConnections
    from gateway.settings import Settings

    S = TypeVar("S", bound=SharedStore[Any])


def approvals_journal(settings: Settings) -> Path:
    from gateway.alerts import journal_path

    return journal_path(settings.alerts, settings.data_root()).resolve().with_name("approvals.jsonl")


def approvals_redis_url(settings: Settings) -> str | None:
    return settings.alerts.redis_url or settings.redis_url


async def open_approval_store(
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
    background: bool = True,
    redis_url: str | None = None,
    redis: RedisConnections | None = None,
) -> ApprovalStore:
    """A started ApprovalStore for these settings (call ``await store.close()`` at shutdown)."""
    from gateway.approvals.store import ApprovalStore

    return await open_shared_store(
        ApprovalStore,
        approvals_journal(settings),
        settings,
        clock=clock,
        background=background,
        redis_url=redis_url,
        redis=redis,
    )


async def open_shared_store(
    cls: type[S],
    path: Path,
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
    background: bool = True,
    redis_url: str | None = None,
    redis: RedisConnections | None = None,
) -> S:
    """A started ``cls`` (a gateway.approvals.store.SharedStore) journalling to ``path``, mirrored in
    the approvals' Redis (``redis_url`` overrides it). ``redis`` (the gateway's) gives the process's
    client and health tracker for the URL and closes the client itself; without it the store makes
    its own client and closes it."""
    from gateway.alerts import writer_id
    from gateway.alerts.journal import Journal
    from gateway.redisconn import connect_redis

    url = redis_url or approvals_redis_url(settings)
    client = (redis.client(url) if redis is not None else connect_redis(url)) if url else None
    store = cls(Journal(path), redis=client, writer=writer_id(path), clock=clock)
    if url and redis is not None:
        store.share_connection(redis.health(url))
    await store.start(background=background)
    return store
