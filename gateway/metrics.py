"""Prometheus metrics: what the gateway did, how long it took, and what is degraded.

    crmgw_requests_total{operation,effect,status}   one per request (observe, from the pipeline)
    crmgw_request_duration_seconds{operation}       latency histogram, gateway-measured
    crmgw_upstream_errors_total{reason}             upstream-unavailable / upstream-timeout / ...
    crmgw_alerts_total{type,level}                  raised by the alerts code (alert())
    crmgw_rule_reloads_total{status}                ok / failed, per worker (each watches the rules)
    crmgw_rules_reload_failing                      1 while the last reload failed (last good kept)
    crmgw_redis_up                                  1 reachable, 0 not (set by the signals code)
    crmgw_audit_lines_written_total / _dropped_total
    crmgw_signals_degraded_total{reason}            counters or scoring skipped (Redis down, ...)
    crmgw_connections_refused_total                 over limits.max_connections (server.py)
    crmgw_in_flight_requests                        requests being handled now
    crmgw_audit_chain_head_info{head,seq} 1 / crmgw_audit_chain_seq
                                                    the audit file's chain head, read from the file at
                                                    scrape time (gateway.audit.heads), so one value for all workers

``observe(flow, record)`` runs in the pipeline's ``finally`` on every request, so it does no I/O and
caches the labelled children (a ``labels()`` call costs more than the increment). It only adds the
request to local tallies; ``flush()`` moves them into the metric families, one increment per
label set: in multi-process mode each increment is a locked write to a memory-mapped file, ~3 us a
request before this (issue 14). The tallies are flushed before any of their requests is answered,
so /metrics never misses an answered request, whichever worker it asks: with the loop tick's audit
lines (gateway.audit.log calls ``before_release`` before releasing the answers waiting for them),
at once for a request written alone (gateway.services.Services.finish), and before every scrape.
Values that other components keep themselves (the audit log's counters, the rule store's reload
status) are copied in as deltas, so a counter never goes backwards and works unchanged in
multi-process mode.

Several worker processes (``crmgw serve --workers N``) share one view through prometheus-client's
multi-process mode: the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before forking, every worker
writes its values to memory-mapped files there, and whichever worker answers ``GET /metrics``
aggregates all of them. Without that variable each process has a private registry (tests, one worker).
"""

from __future__ import annotations

import bisect
import os
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.audit.log import AuditLog
    from gateway.model import Flow
    from gateway.services import Services

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Gateway-added latency is sub-millisecond; the CRM's answers take tens to hundreds of ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UPSTREAM_REASONS = frozenset({"upstream-unavailable", "upstream-timeout", "obligation-unenforceable"})
SYNC_INTERVAL = 1.0


# This process's id, refreshed in a forked child: prometheus-client checks it on every increment
# to notice a fork, and os.getpid() is a system call (three a request).
_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def _process_id() -> int:
    return _pid[0]


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


class Metrics:
    """The gateway's metric families on one registry (private, or multi-process aggregated)."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        if self.multiprocess:
            # prometheus-client picks its value class when first imported; the supervisor may have
            # set the variable after that, so pick again before any metric is created
            # (get_value_class is unannotated in prometheus-client).
            # (MultiProcessValue is unannotated in prometheus-client.) The process id is the cached
            # one above, the documented hook for it; a child still gets its own files after a fork.
            values.ValueClass = values.MultiProcessValue(process_identifier=_process_id)  # type: ignore[no-untyped-call]
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "crmgw_requests",
            "Requests handled, by operation, effect and HTTP status.",
            ["operation", "effect", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "crmgw_request_duration_seconds",
            "Time from request received to response sent.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "crmgw_upstream_errors", "Requests the CRM did not answer properly, by reason.", ["reason"], registry=r
        )
        self.alerts = Counter("crmgw_alerts", "Alerts raised, by type and level.", ["type", "level"], registry=r)
        self.rule_reloads = Counter(
            "crmgw_rule_reloads", "Rule reloads by status (ok, failed).", ["status"], registry=r
        )
        self.rules_failing = Gauge(
            "crmgw_rules_reload_failing",
            "1 while the last rule reload failed and the last good rules serve.",
            registry=r,
            multiprocess_mode="max",
        )
        self.redis_up = Gauge(
            "crmgw_redis_up", "1 when Redis answered the last check, 0 when not.", registry=r, multiprocess_mode="min"
        )
        self.audit_written = Counter("crmgw_audit_lines_written", "Audit lines written.", registry=r)
        self.audit_dropped = Counter(
            "crmgw_audit_lines_dropped", "Audit lines the disk refused (kept on stderr).", registry=r
        )
        self.signals_degraded = Counter(
            "crmgw_signals_degraded",
            "Requests whose behaviour counters or scoring were skipped, by reason.",
            ["reason"],
            registry=r,
        )
        self.connections_refused = Counter(
            "crmgw_connections_refused", "Connections refused over limits.max_connections.", registry=r
        )
        self.observer_errors = Counter(
            "crmgw_observer_errors",
            "Finished requests an observer (metrics, signals, scoring) failed on, by observer.",
            ["observer"],
            registry=r,
        )
        self.in_flight = Gauge(
            "crmgw_in_flight_requests", "Requests being handled.", registry=r, multiprocess_mode="livesum"
        )
        self._request_children: dict[tuple[str, str, str], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}
        # observed, not yet in the families (flush): requests per label set, latencies per operation
        self._requests_pending: dict[tuple[str, str, str], int] = {}
        self._latency_pending: dict[str, list[float]] = {}
        self._seen: dict[str, int] = {"written": 0, "dropped": 0, "reloads": 0, "failures": 0}
        self._collectors: list[Collector] = []  # custom collectors read at scrape time (add_collector)

    def add_collector(self, collector: Collector) -> None:
        """A collector computed at scrape time (not in the multi-process files), e.g. the audit chain head."""
        self._collectors.append(collector)
        self.registry.register(collector)

    # --- the request path (no I/O) --------------------------------------------------------
    def observe(self, flow: Flow, record: dict[str, Any]) -> None:
        """Tally one finished request from its audit record, for the next :meth:`flush`
        (gateway.services.Services.finish logs and counts a failure here like any observer's)."""
        operation = record.get("operation") or "none"  # refused before the operation was known
        key = (operation, record.get("effect") or "deny", str(record.get("status") or 0))
        pending = self._requests_pending
        pending[key] = pending.get(key, 0) + 1
        latencies = self._latency_pending.get(operation)
        if latencies is None:
            latencies = self._latency_pending[operation] = []
        latencies.append(flow.elapsed_ms() / 1000.0)
        if flow.error in UPSTREAM_REASONS:
            self.upstream_errors.labels(flow.error).inc()

    def flush(self) -> None:
        """Move the tallies into the metric families: one increment per label set and histogram
        bucket, the histogram's sum added in observation order (the same float as one by one)."""
        if not self._requests_pending:
            return
        requests, self._requests_pending = self._requests_pending, {}
        latencies, self._latency_pending = self._latency_pending, {}
        for key, count in requests.items():
            child = self._request_children.get(key)
            if child is None:
                child = self._request_children[key] = self.requests.labels(*key)
            child.inc(count)
        for operation, seconds in latencies.items():
            hist = self._latency_children.get(operation)
            if hist is None:
                hist = self._latency_children[operation] = self.latency.labels(operation)
            _observe_all(hist, seconds)

    def submit(self, flow: Flow, record: dict[str, Any], ruleset: object) -> None:
        """gateway.services.Observer: the metrics observe every finished request first."""
        self.observe(flow, record)

    def observer_failed(self, name: str) -> None:
        """An observer (signals, scoring) raised on a finished request; the log has the traceback."""
        self.observer_errors.labels(name).inc()

    def track_audit(self, audit: AuditLog) -> None:
        """Copy the audit log's written/dropped counters in (as deltas)."""
        self._delta("written", audit.written, self.audit_written)
        self._delta("dropped", audit.dropped, self.audit_dropped)

    # --- called by other components -------------------------------------------------------
    def alert(self, alert_type: str, level: str) -> None:
        """The alerts code calls this once per alert raised."""
        self.alerts.labels(alert_type, level).inc()

    def set_redis_up(self, up: bool) -> None:
        self.redis_up.set(1 if up else 0)

    def signals_skipped(self, reason: str) -> None:
        """The signals/scoring code calls this when a request's counters could not be updated."""
        self.signals_degraded.labels(reason).inc()

    def connection_refused(self) -> None:
        self.connections_refused.inc()

    # --- periodic copy of state owned elsewhere -------------------------------------------
    def sync(self, services: Services) -> None:
        self.flush()
        self.track_audit(services.audit)
        status = services.store.status
        self._delta("reloads", status.reloads, self.rule_reloads.labels("ok"))
        self._delta("failures", status.failures, self.rule_reloads.labels("failed"))
        self.rules_failing.set(1 if status.last_error else 0)

    def _delta(self, name: str, current: int, counter: Counter) -> None:
        seen = self._seen[name]
        if current > seen:
            counter.inc(current - seen)
        self._seen[name] = current

    def render(self) -> bytes:
        self.flush()
        if self.multiprocess:
            registry = CollectorRegistry()
            # unannotated in prometheus-client; it registers itself on ``registry``
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            for collector in self._collectors:
                registry.register(collector)
            return generate_latest(registry)
        return generate_latest(self.registry)


def _observe_all(hist: Histogram, seconds: list[float]) -> None:
    """``hist.observe(s) for s in seconds`` with one write per bucket touched and one for the sum.

    prometheus-client has no batch API: this uses its histogram's parts (``_upper_bounds``,
    ``_buckets``, ``_sum``), pinned by constraints.txt and checked against ``observe`` one by one
    (tests/ops/test_metrics_batch.py)."""
    if len(seconds) == 1:
        hist.observe(seconds[0])
        return
    bounds: list[float] = hist._upper_bounds
    counts: dict[int, int] = {}
    total = hist._sum.get()
    for value in seconds:
        total += value  # in order, as each observe() would have added it
        i = bisect.bisect_left(bounds, value)  # the first bucket whose bound is >= value
        counts[i] = counts.get(i, 0) + 1
    hist._sum.set(total)
    for i, count in counts.items():
        hist._buckets[i].inc(count)


def register_metrics_route(app: web.Application, services: Services, path: str = "/metrics") -> None:
    """Add ``GET /metrics`` (admin networks only) and the periodic sync of ``services.metrics``.

    Call before the catch-all proxy route is added, so ``/metrics`` is not forwarded to the CRM.
    """
    import ipaddress

    from gateway.audit.heads import ChainHeadCollector
    from gateway.background import Periodic, periodic_ctx
    from gateway.context.client_ip import peer_in
    from gateway.errors import Forbidden

    metrics = services.metrics
    metrics.add_collector(ChainHeadCollector(services.audit))
    networks = [ipaddress.ip_network(n, strict=False) for n in services.settings.admin.allow_networks]

    def sync() -> None:
        metrics.sync(services)

    async def scrape(request: web.Request) -> web.Response:
        if not peer_in(request.remote, networks):
            raise Forbidden("admin-network-only")
        sync()
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # the last sync at stop counts the last audit lines of a draining worker
    app.cleanup_ctx.append(periodic_ctx(Periodic("metrics-sync", SYNC_INTERVAL, sync), final=sync))
    app.router.add_get(path, scrape)
