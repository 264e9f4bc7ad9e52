"""Behaviour signals: counters per user (Redis or in-process), declared thresholds, block/step-up.

config.py          SignalsConfig: the ``signals:`` settings section
counters.py        what is counted per request, windows, the backend protocol
lua.py             the Redis counting script (one round trip per request)
redis_backend.py   counters shared by every instance
memory_backend.py  counters of one process (demo default, replay)
anomalies.py       rules/anomalies.yaml loader (strict, file:line:col)
thresholds.py      rule evaluation -> Finding
enforcement.py     block / step_up state, Redis + pub/sub propagation
blocks.py          what is in force, lifted by an analyst (audited); blocks_cli.py ``crmgw blocks``
link.py            the stage's view of the shared Redis tracker (gateway/redishealth.py) and its codes
epoch.py           lost counter data noticed (epoch key, per-user markers) -> signals-data-lost
rebuild.py, cli.py ``crmgw signals rebuild``: the windows restored from the audit log
redis_watch.py     the stage's watch over Redis: pub/sub listener, periodic reload, reconnect
sink.py            AlertSink: where findings are raised (the alert store), shared with the detector
stage.py           SignalsStage: check / submit / background worker / health
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.clock import Clock, utc_now
from gateway.signals.anomalies import AnomalyRule, AnomalyRules, load_anomalies
from gateway.signals.config import SignalsConfig
from gateway.signals.sink import AlertSink

# The stage, its backends and redis-py are imported when first used (build_signals, or the name
# below through __getattr__), not with the package: the rule loader behind every crmgw command
# imports gateway.signals.anomalies, and redis-py alone takes a tenth of a second or more.
_LAZY = {"SignalsStage": "gateway.signals.stage"}
if TYPE_CHECKING:
    from gateway.redisconn import RedisConnections
    from gateway.signals.stage import SignalsStage

__all__ = [
    "AlertSink",
    "AnomalyRule",
    "AnomalyRules",
    "SignalsConfig",
    "SignalsStage",
    "build_signals",
    "load_anomalies",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_signals(
    config: SignalsConfig,
    *,
    redis_url: str | None,
    alerts: AlertSink | None,
    clock: Clock | None = None,
    redis: RedisConnections | None = None,
) -> SignalsStage:
    """The stage for ``config``; ``redis_url`` is the top-level setting (``signals.redis_url`` wins).

    ``redis`` (the gateway's) gives the process's client and health tracker for the URL, and closes
    the client itself; without it (the CLIs, tests) the stage makes its own client and closes it.

    Raises ValueError when the Redis backend is chosen without any Redis URL, or the URL is bad.
    """
    from gateway.redisconn import connect_redis
    from gateway.signals.enforcement import EnforcementState, LocalEnforcement, RedisEnforcement
    from gateway.signals.memory_backend import MemoryCounters
    from gateway.signals.redis_backend import RedisCounters
    from gateway.signals.redis_watch import RedisWatch
    from gateway.signals.stage import SignalsStage

    clock = clock or utc_now
    state = EnforcementState()
    url = config.redis_url or redis_url
    if config.backend == "memory" or (config.backend == "auto" and not url):
        return SignalsStage(
            config,
            backend=MemoryCounters(config),
            enforcement=LocalEnforcement(state),
            state=state,
            alerts=alerts,
            clock=clock,
        )
    if not url:
        raise ValueError("signals.backend is 'redis' but no Redis URL is set (signals.redis_url or redis_url)")
    client = redis.client(url) if redis is not None else connect_redis(url)
    link = redis.health(url) if redis is not None else None
    counters = RedisCounters(client, config)
    # epoch seconds on the gateway clock, as SignalsStage.now
    enforcement = RedisEnforcement(client, state, lambda: clock().timestamp())
    return SignalsStage(
        config,
        backend=counters,
        enforcement=enforcement,
        state=state,
        alerts=alerts,
        clock=clock,
        redis=RedisWatch(
            client,
            config,
            counters=counters,
            enforcement=enforcement,
            clock=clock,
            link=link,
            owns_client=redis is None,
        ),
    )
