"""The signals stage: counts every request, evaluates the declared thresholds, enforces their actions.

    request path   check()   I/O-free: block / step-up in force (local state), fail mode while
                             Redis does not take counter writes
                   submit()  I/O-free: the audit record goes on a bounded queue (full: dropped
                             and counted)
    background     worker    batches of queued records -> one counter round trip -> thresholds ->
                             findings -> block/step_up (Redis + pub/sub) and the alert sink
                   supervisor (Redis only, gateway/signals/redis_watch.py) pub/sub listener,
                             periodic reload, reconnect with backoff

Redis being down -- or refusing writes (maxmemory, a read-only replica) -- never breaks a request:
counting is dropped (and counted as dropped), health says degraded until a write succeeds again
(gateway/signals/link.py: the process's shared tracker for that Redis), and only operations whose fail mode is ``closed`` are refused (503
signals-unavailable). Counter data lost behind the gateway's back (FLUSHALL, a failover to an empty
replica) is noticed, shown in health and raised as a ``signals-data-lost`` alert
(gateway/signals/epoch.py); ``crmgw signals rebuild`` restores it from the audit log.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, TypeAlias

from detectors.events import count_event
from gateway.background import spawn
from gateway.clock import Clock, utc_now
from gateway.errors import Forbidden, GatewayError, Unauthenticated, Unavailable
from gateway.model import Flow, Identity, RequestContext
from gateway.redishealth import OK, STORAGE_ERRORS, UNREACHABLE, RedisHealth
from gateway.signals import allowance
from gateway.signals.anomalies import AnomalyRules
from gateway.signals.config import SignalsConfig
from gateway.signals.counters import CounterBackend, count_request
from gateway.signals.enforcement import Enforcement, EnforcementState, Measure
from gateway.signals.epoch import PROBLEM as DATA_LOST
from gateway.signals.epoch import Loss
from gateway.signals.link import PROBLEMS, problems
from gateway.signals.sink import AlertArgs, AlertSink
from gateway.signals.thresholds import Finding, PlanCache, evaluate_all

if TYPE_CHECKING:
    from gateway.metrics import Metrics
    from gateway.ruleset import RuleSet
    from gateway.services import AuditRecord
    from gateway.signals.redis_watch import RedisWatch

log = logging.getLogger("crmgw.signals")

# What submit is given with a record: the RuleSet it was decided with, or the anomaly rules themselves.
Rules: TypeAlias = "RuleSet | AnomalyRules | None"


def rules_of(ruleset: Rules) -> AnomalyRules | None:
    """The anomaly rules of a RuleSet (``ruleset.anomalies``), or the rules themselves."""
    if ruleset is None or isinstance(ruleset, AnomalyRules):
        return ruleset
    return ruleset.anomalies


class SignalsStage:
    """The Guard and Observer of behaviour signals (gateway.services.SignalsPart)."""

    def __init__(
        self,
        config: SignalsConfig,
        *,
        backend: CounterBackend,
        enforcement: Enforcement,
        state: EnforcementState,
        alerts: AlertSink | None,
        clock: Clock | None = None,
        redis: RedisWatch | None = None,
    ):
        self.config = config
        self.backend = backend
        self.enforcement = enforcement
        self.state = state
        self.alerts = alerts
        self.clock: Clock = clock or utc_now
        self.redis = redis  # the watch over Redis (None: memory backend)
        self.client = redis.client if redis is not None else None  # the Redis client
        self.link = redis.link if redis is not None else RedisHealth(ok=True, clock=self.clock)
        # a memory backend cannot lose its data behind the gateway's back; Redis can
        self.epoch = redis.epoch if redis is not None else None
        self.losses_reported = 0
        self.findings: deque[Finding] = deque(maxlen=200)
        self.counted = self.dropped = self.alerts_raised = self.alerts_failed = 0
        self._queue: asyncio.Queue[tuple[AuditRecord, Rules]] = asyncio.Queue(maxsize=config.queue_size)
        self._worker: asyncio.Task[Any] | None = None
        self._supervisor: asyncio.Task[Any] | None = None
        # The app's lifecycle attaches the gateway's metrics to the stage it builds; a stage a
        # test hands to create_app counts without them.
        self.metrics: Metrics | None = None
        self._plans = PlanCache()

    def attach_metrics(self, metrics: Metrics) -> None:
        """Report whether Redis takes counter writes (crmgw_redis_up) and skipped counting
        (crmgw_signals_degraded, by reason)."""
        self.metrics = metrics
        if self.redis is not None:
            self.link.listen(metrics.set_redis_up)
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
        if not self.counting_ok and self.config.fail_mode_for(ctx.operation) == "closed":
            return Unavailable("signals-unavailable", detail=self.link.last_error or "")
        return None

    async def row_budget(self, flow: Flow) -> allowance.RowBudget | None:
        """The rows a streamed answer may carry before a block rule fires (gateway.signals.allowance)."""
        return await allowance.row_budget(self, flow, rules_of(flow.ruleset))

    @property
    def counting_ok(self) -> bool:
        """Redis takes writes (the shared tracker) and the signals' own last write went through."""
        return self.link.ok and (self.redis is None or self.redis.own_writes_ok)

    def submit(self, flow: Flow, record: AuditRecord, ruleset: Rules) -> None:
        """Queue the record for the worker (no I/O); a full queue drops it, counted. Anything
        else going wrong here is caught, logged and counted by Services.finish."""
        try:
            self._queue.put_nowait((record, ruleset))
        except asyncio.QueueFull:
            self._drop(1, "queue-full")

    # --- background -----------------------------------------------------------------------
    async def start(self) -> None:
        if self.redis is not None:
            await self.probe()  # start-up reload of blocks/step-ups; degraded (not fatal) if down
            self._supervisor = spawn("signals-supervisor", self.redis.supervise(self._report_loss))
        self._worker = spawn("signals-worker", self._work())

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.drain(), timeout=5.0)
        except TimeoutError:
            log.warning("signals: %d events not counted at shutdown", self._queue.qsize())
        if self.redis is not None:
            self.redis.stopping = True
        tasks = [t for t in (self._supervisor, self._worker) if t is not None]
        self._supervisor = self._worker = None
        for task in tasks:
            task.cancel()
        # Not gateway.background.cancel_and_wait, which waits as long as the task takes: a
        # cancellation may land inside redis-py and come out as a connection error, leaving the
        # worker waiting on its queue; the bounded wait keeps shutdown from hanging regardless.
        # (A task that ended with an error was logged by spawn.)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5.0)
            if pending:
                log.warning("signals: tasks still running at shutdown: %s", [t.get_name() for t in pending])
        if self.redis is None or self.redis.owns_client:  # else the gateway's RedisConnections closes it
            await self.backend.close()

    async def drain(self) -> None:
        """Return once everything submitted so far is counted and evaluated."""
        if self._worker is not None and not self._worker.done():
            await self._queue.join()
            return
        while not self._queue.empty():  # not started: do the work here
            await self._run_batch()

    async def _work(self) -> None:
        """The worker: waits on the queue (not a periodic job), one batch at a time."""
        while True:
            await self._run_batch(wait=True)

    async def _run_batch(self, wait: bool = False) -> None:
        batch = [await self._queue.get()] if wait else [self._queue.get_nowait()]
        # see SignalsConfig.batch_wait; in memory there is no round trip to share
        gather = wait and self.redis is not None and self.config.batch_wait
        if gather and self._queue.qsize() < self.config.batch_size - 1:
            await asyncio.sleep(self.config.batch_wait)
        while len(batch) < self.config.batch_size and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        try:
            await self._process(batch)
        except Exception:
            log.exception("signals: batch of %d failed", len(batch))
        finally:
            for _ in batch:
                self._queue.task_done()

    async def _process(self, batch: list[tuple[AuditRecord, Rules]]) -> None:
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
            if self.redis is not None:
                self.redis.own_failure(exc)
            else:
                self.link.failed(exc)
            self._drop(len(items), "redis-unavailable" if self.link.state == UNREACHABLE else "redis-refusing-writes")
            return
        self.link.wrote()
        if self.redis is not None:
            self.redis.own_state = OK
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
        measure: Measure | None = None
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
            AlertArgs(
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
        )
        if measure is not None and alert_id:
            # the block names its alert, so lifting it is recorded in that alert's history
            try:
                await self.enforcement.attach_alert(measure, alert_id)
            except STORAGE_ERRORS as exc:
                self.link.failed(exc)

    async def _alert(self, alert: AlertArgs) -> str | None:
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
        await self._alert(loss.alert())

    # --- Redis link (gateway/signals/redis_watch.py) -----------------------------------------
    async def probe(self) -> bool:
        """One check of Redis (a write, not a PING); True when it took the write (memory: always)."""
        if self.redis is None:
            return True
        return await self.redis.probe(self._report_loss)

    def health(self) -> dict[str, Any]:
        lost = self.epoch is not None and self.epoch.lost
        # the tracker is ok (another store wrote) but the signals' own last write failed
        counting = [PROBLEMS[self.redis.own_state]] if self.redis and self.link.ok and not self.counting_ok else []
        found = problems(self.link) + counting + ([DATA_LOST] if lost else [])
        return {
            "backend": self.backend.name,
            "state": self.link.state,  # ok | unreachable | refusing-writes (gateway/signals/link.py)
            "connected": self.link.connected,
            "degraded": bool(found),
            "problems": found,  # what /_gw/health lists under "degraded"
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
