"""Alerts: durable, de-duplicated, shared by every gateway instance, triaged by analysts.

model.py        Alert, its life cycle (open → acknowledged → resolved | false_positive), ids
lifecycle.py    the pure "next copy" functions (repeat, analyst action, evidence bounds)
journal.py      the append-only, fsync'd JSON-lines file: the durable record
redis_mirror.py the shared copy in Redis (one Lua script per change: dedupe + CAS + indexes)
store.py        AlertStore: start/close, analyst actions, reads (Redis while up, else the journal)
intake.py       its raise path: de-duplication, joining a later window to the open alert, sinks
persistence.py  its Redis side: the shared health, degraded mode, replay after an outage
sinks.py        webhook (retries, backoff, jitter) and syslog
api.py          the admin JSON API;  cli.py  ``crmgw alerts ...``;  verdicts.py  training export
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.alerts.config import AlertsConfig
from gateway.alerts.model import Alert, AlertNotFound, InvalidTransition

# The store (and redis-py with it) is imported when first used, not with the package: settings and
# `crmgw`'s parser import gateway.alerts.config, and redis-py alone takes a tenth of a second or more.
_LAZY = {"AlertStore": "gateway.alerts.store", "JournalUnavailable": "gateway.alerts.store"}
if TYPE_CHECKING:
    from gateway.alerts.store import AlertStore, JournalUnavailable
    from gateway.redisconn import RedisConnections

__all__ = [
    "Alert",
    "AlertNotFound",
    "AlertStore",
    "AlertsConfig",
    "InvalidTransition",
    "JournalUnavailable",
    "journal_path",
    "open_alert_store",
    "writer_id",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def writer_id(journal: Path) -> str:
    """The id that names a journal in Redis (its replay marker), stable across restarts: this host
    and the journal's path (alerts; approvals and access requests too)."""
    return hashlib.sha256(f"{socket.gethostname()}:{journal}".encode()).hexdigest()[:16]


def journal_path(config: AlertsConfig, base_dir: str | Path) -> Path:
    p = Path(config.journal)
    return p if p.is_absolute() else Path(base_dir) / p


async def open_alert_store(
    config: AlertsConfig,
    *,
    redis_url: str | None,
    base_dir: str | Path,
    clock: Callable[[], datetime] | None = None,
    background: bool = True,
    with_sinks: bool = True,
    redis: RedisConnections | None = None,
) -> AlertStore:
    """A started AlertStore (call ``await store.close()`` at shutdown).

    ``config.redis_url`` wins over ``redis_url`` (the gateway's); with neither, alerts live in the
    journal only (one instance). ``background=False`` (the CLI) starts no periodic Redis check;
    ``with_sinks=False`` (the CLI) sends no notifications. ``redis`` (the gateway's) gives the
    process's client and health tracker for the URL and closes the client itself; without it the
    store makes its own client and closes it.
    """
    from gateway.alerts.journal import Journal
    from gateway.alerts.sinks import AlertSink, SyslogSink, WebhookSink
    from gateway.alerts.store import AlertStore
    from gateway.redisconn import connect_redis

    path = journal_path(config, base_dir).resolve()
    url = config.redis_url or redis_url
    sinks: list[AlertSink] = []
    if with_sinks and config.webhook is not None:
        sinks.append(WebhookSink(config.webhook))
    if with_sinks and config.syslog is not None:
        sinks.append(SyslogSink(config.syslog))
    client = (redis.client(url) if redis is not None else connect_redis(url)) if url else None
    store = AlertStore(
        Journal(path),
        redis=client,
        redis_health=redis.health(url) if redis is not None and url else None,
        owns_client=redis is None,
        writer=writer_id(path),
        clock=clock,
        sinks=sinks,
        max_occurrences=config.max_occurrences,
        check_interval=config.redis_check_interval,
        repeat_min_interval=config.repeat_min_interval,
        join_days=config.join_days,
        join_types=config.join_types,
    )
    await store.start(background=background)
    return store
