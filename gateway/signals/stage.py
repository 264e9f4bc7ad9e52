"""The signals stage: counts every request, evaluates the declared thresholds, enforces their actions.

    request path   check()   I/O-free: block / step-up in force (local state), fail mode while
                             Redis does not take counter writes
                   submit()  I/O-free, never raises: the audit record goes on a bounded queue
    background     worker    batches of queued records -> one counter round trip -> thresholds ->
                             findings -> block/step_up (Redis + pub/sub) and the alert sink
                   supervisor (Redis only) pub/sub listener, periodic reload, reconnect with backoff

Redis being down -- or refusing writes (maxmemory, a read-only replica) -- never breaks a request:
counting is dropped (and counted as dropped), health says degraded until a write succeeds again
(gateway/signals/link.py), and only operations whose fail mode is ``closed`` are refused (503
signals-unavailable). Counter data lost behind the gateway's back (FLUSHALL, a failover to an empty
replica) is noticed, shown in health and raised as a ``signals-data-lost`` alert
(gateway/signals/epoch.py); ``crmgw signals rebuild`` restores it from the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from redis.exceptions import RedisError

from detectors.events import count_event
from gateway.errors import Forbidden, GatewayError, Unauthenticated, Unavailable
from gateway.model import Flow, Identity, RequestContext
from gateway.signals.anomalies import AnomalyRules
from gateway.signals.config import SignalsConfig
from gateway.signals.counters import CounterBackend, count_request, marker_ttl
from gateway.signals.enforcement import CHANNEL, EnforcementState, Measure
from gateway.signals.epoch import PROBLEM as DATA_LOST
from gateway.signals.epoch import EpochWatch, Loss
from gateway.signals.link import UNREACHABLE, Link
from gateway.signals.thresholds import Finding, PlanCache, evaluate_all

log = logging.getLogger("crmgw.signals")
STORAGE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class AlertSink(Protocol):
    async def raise_alert(
        self,
        *,
        user: str,
        type: str,
        level: str,
        score: float,
        summary: str,
        evidence: dict,
        rule: str,
        window: str,
        source: str = "threshold",
    ) -> str | None: ...


def rules_of(ruleset: Any) -> AnomalyRules | None:
    """The anomaly rules of a RuleSet (``ruleset.anomalies``), or the rules themselves."""
    if isinstance(ruleset, AnomalyRules):
        return ruleset
    return getattr(ruleset, "anomalies", None)


class SignalsStage:
    def __init__(
        self,
        config: SignalsConfig,
        *,
        backend: CounterBackend,
        enforcement,
        state: EnforcementState,
        alerts: AlertSink | None,
        clock: Callable[[], datetime] | None = None,
        client=None,
    ):
        self.config = config
        self.backend = backend
        self.enforcement = enforcement
        self.state = state
        self.alerts = alerts
        self.clock = clock or (lambda: datetime.now(UTC))
        self.client = client  # the Redis client (None: memory backend)
        self.link = Link(ok=client is None, clock=self.clock)
        # a memory backend cannot lose its data behind the gateway's back; Redis can
        self.epoch = (
            EpochWatch(client, self.clock, marker_ttl(config.history_days, config.remember_days))
            if client is not None
            else None
        )
        self.losses_reported = 0
        self.findings: deque[Finding] = deque(maxlen=200)
        self.counted = self.dropped = self.alerts_raised = self.alerts_failed = 0
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=config.queue_size)
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self.metrics = None  # gateway.metrics.Metrics (optional): see attach_metrics
        self._plans = PlanCache()

    def attach_metrics(self, metrics) -> None:
        """Report whether Redis takes counter writes (crmgw_redis_up) and skipped counting
        (crmgw_signals_degraded, by reason)."""
        self.metrics = metrics
        if self.client is not None:
            self.link.on_change = metrics.set_redis_up
            metrics.set_redis_up(self.link.ok)

    def _drop(self, n: int, reason: str) -> None:
        self.dropped += n
        if self.metrics is not None:
            for _ in range(n):
                self.metrics.signals_skipped(reason)

    def now(self) -> float:
        return self.clock().timestamp()

    # --- request path (no I/O) ------------------------------------------------------------
    def check(self, identity: Identity, ctx: RequestContext) -> GatewayError | None:
        active = self.state.active(identity.user.id, self.now())
        if "block" in active:
            m = active["block"]
            return Forbidden("anomaly-block", detail=f"blocked by {m.rule} until {m.until:.0f}", rule=m.rule)
        if "step_up" in active and not identity.mfa:
            m = active["step_up"]
            return Unauthenticated("step-up-required", detail=f"step-up by {m.rule}", rule=m.rule)
        if not self.link.ok and self.config.fail_mode_for(ctx.operation) == "closed":
            return Unavailable("signals-unavailable", detail=self.link.last_error or "")
        return None

    def submit(self, flow: Flow, record: dict, ruleset) -> None:
        try:
            self._queue.put_nowait((record, ruleset))
        except asyncio.QueueFull:
            self._drop(1, "queue-full")
        except Exception:  # never let counting break a request
            log.exception("signals: submit failed")
            self._drop(1, "submit-failed")

    # --- background -----------------------------------------------------------------------
    async def start(self) -> None:
        if self.client is not None:
            await self.probe()  # start-up reload of blocks/step-ups; degraded (not fatal) if down
            self._tasks.append(asyncio.create_task(self._supervise(), name="signals-supervisor"))
        self._tasks.append(asyncio.create_task(self._worker(), name="signals-worker"))

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.drain(), timeout=5.0)
        except TimeoutError:
            log.warning("signals: %d events not counted at shutdown", self._queue.qsize())
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        # A cancellation may land inside redis-py and come out as a connection error; the loops
        # check _stopping, and a bounded wait keeps shutdown from hanging regardless.
        done, pending = await asyncio.wait(self._tasks, timeout=5.0)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("signals: %s ended with %r", task.get_name(), task.exception())
        if pending:
            log.warning("signals: tasks still running at shutdown: %s", [t.get_name() for t in pending])
        self._tasks.clear()
        await self.backend.close()

    async def drain(self) -> None:
        """Return once everything submitted so far is counted and evaluated."""
        if any(t.get_name() == "signals-worker" and not t.done() for t in self._tasks):
            await self._queue.join()
            return
        while not self._queue.empty():  # not started: do the work here
            await self._run_batch()

    async def _worker(self) -> None:
        while True:
            await self._run_batch(wait=True)

    async def _run_batch(self, wait: bool = False) -> None:
        batch = [await self._queue.get()] if wait else [self._queue.get_nowait()]
        if wait and self.config.batch_wait and self._queue.qsize() < self.config.batch_size - 1:
            await asyncio.sleep(self.config.batch_wait)  # see SignalsConfig.batch_wait
        while len(batch) < self.config.batch_size and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        try:
            await self._process(batch)
        except Exception:
            log.exception("signals: batch of %d failed", len(batch))
        finally:
            for _ in batch:
                self._queue.task_done()

    async def _process(self, batch: list[tuple[dict, Any]]) -> None:
        items = []
        for record, ruleset in batch:
            try:
                inc = count_event(record)
            except (KeyError, ValueError, TypeError):
                log.warning("signals: uncountable audit record %s", record.get("request_id"))
                continue
            if inc is None:
                continue
            groups, pairs = self._plans.plan(rules_of(ruleset), inc, record.get("operation"))
            items.append((inc, record, pairs, count_request(inc, record, groups)))
        if not items:
            return
        if self.link.state == UNREACHABLE:
            # no 1 s timeouts per batch while known down; a Redis refusing writes answers at once,
            # so there every batch is tried and the first one taken ends the degraded state
            self._drop(len(items), "redis-unavailable")
            return
        try:
            results = await self.backend.count([item[3] for item in items])
        except STORAGE_ERRORS as exc:
            self.link.failed(exc)
            self._drop(len(items), "redis-unavailable" if self.link.state == UNREACHABLE else "redis-refusing-writes")
            return
        self.link.wrote()
        self.counted += len(items)
        if self.epoch is not None:
            try:
                loss = await self.epoch.after_count([item[3] for item in items], results)
            except STORAGE_ERRORS as exc:
                self.link.failed(exc)
                loss = None
            if loss is not None:
                await self._report_loss(loss)
        for (inc, record, pairs, _), result in zip(items, results):
            for finding in evaluate_all(pairs, result, inc, record):
                await self._act(finding)

    async def _act(self, finding: Finding) -> None:
        self.findings.append(finding)
        rule = finding.rule
        if finding.silenced_by is not None:
            log.info("signals: %s for %s silenced by exception %d", rule.id, finding.user, finding.silenced_by)
            return
        evidence = dict(finding.evidence)
        measure = None
        if rule.action in ("block", "step_up"):
            now = self.now()
            measure = Measure(finding.user, rule.action, rule.id, now + rule.action_ttl, since=now)
            evidence["action"] = {"type": rule.action, "until": measure.until}
            try:
                await self.enforcement.impose(measure)
            except STORAGE_ERRORS as exc:  # in force here already; stored at the next reload
                self.link.failed(exc)
        try:
            evidence["recent_requests"] = await self.backend.recent(finding.user)
        except STORAGE_ERRORS as exc:
            self.link.failed(exc)
            evidence["recent_requests"] = []
        log.warning("signals: %s [%s] %s", rule.id, rule.level, finding.summary)
        alert_id = await self._alert(
            user=finding.user,
            type=rule.id,
            level=rule.level,
            score=finding.score,
            summary=finding.summary,
            evidence=evidence,
            rule=rule.id,
            window=rule.timespan,
            source="threshold",
        )
        if measure is not None and alert_id:
            # the block names its alert, so lifting it is recorded in that alert's history
            try:
                await self.enforcement.attach_alert(measure, alert_id)
            except STORAGE_ERRORS as exc:
                self.link.failed(exc)

    async def _alert(self, **alert) -> str | None:
        if self.alerts is None:
            return None
        try:
            alert_id = await self.alerts.raise_alert(**alert)
            self.alerts_raised += 1
            return alert_id
        except Exception:
            self.alerts_failed += 1
            log.exception("signals: alert sink failed for %s", alert["type"])
            return None

    # --- lost data (gateway/signals/epoch.py) ------------------------------------------------
    async def _report_loss(self, loss: Loss) -> None:
        log.error("signals: counter data lost: %s (epoch %s)", loss.reason, loss.epoch.get("id"))
        self.losses_reported += 1
        await self._alert(**loss.alert())

    # --- Redis link -----------------------------------------------------------------------
    async def probe(self) -> bool:
        """One check: write the epoch, store/reload blocks and step-ups; True when Redis took the
        write. Not a PING: a Redis at maxmemory answers PING and refuses every counter."""
        if self.client is None:
            return True
        try:
            if not self.link.ok and hasattr(self.backend, "prepare"):
                await self.backend.prepare()  # the script cache is empty after a Redis restart
            loss = await self.epoch.check()
            await self.enforcement.reload(self.now())
        except STORAGE_ERRORS as exc:
            self.link.failed(exc)
            return False
        self.link.wrote()
        if loss is not None:
            await self._report_loss(loss)
        return True

    async def _supervise(self) -> None:
        delay = self.config.reconnect_min
        while not self._stopping:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                if await self.probe():
                    delay = self.config.reconnect_min
                    next_reload = time.monotonic() + self.config.reload_interval
                    while not self._stopping:
                        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if msg is not None and msg.get("type") == "message":
                            self.enforcement.on_message(msg["data"])
                        if not self.link.ok or time.monotonic() >= next_reload:
                            if not await self.probe():
                                break
                            next_reload = time.monotonic() + self.config.reload_interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.link.failed(exc)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max)

    def health(self) -> dict:
        lost = self.epoch is not None and self.epoch.lost
        problems = self.link.problems() + ([DATA_LOST] if lost else [])
        return {
            "backend": self.backend.name,
            "state": self.link.state,  # ok | unreachable | refusing-writes (gateway/signals/link.py)
            "connected": self.link.connected,
            "degraded": bool(problems),
            "problems": problems,  # what /_gw/health lists under "degraded"
            "last_error": self.link.last_error,
            "last_write": self.link.last_write,
            "data_lost": lost,
            "epoch": self.epoch.health() if self.epoch is not None else None,
            "losses_reported": self.losses_reported,
            "queued": self._queue.qsize(),
            "dropped": self.dropped,
            "counted": self.counted,
            "findings": len(self.findings),
            "alerts_raised": self.alerts_raised,
            "alerts_failed": self.alerts_failed,
            "enforcement": self.state.summary(self.now()),
        }
