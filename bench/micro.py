"""Micro-benchmarks, in process: one decision, the request preparation, the response filter.

    decide       PolicyEngine.decide on a realistic RequestContext (rules only; target <= 30 µs)
    prepare      identity (cached JWT) + context (normalise, catalogue) + decide: all the work done
                 before the upstream is called
    filter       apply_obligations on the 50-record list (parse, scope, masks, re-encode)
    audit_record building the audit line's dict and encoding it (orjson), without the write
    count_event  what one audit record adds to the counters (detectors.events.count_event)
    submit_to_payload  the signals worker's Python for one record before the Redis round trip, in
                 a run of 8 records of the caller reading one customer: count_event, the plan
                 cache, the backend request (counters.count_request), the script's payload
                 (redis_backend: one payload per run), per record

Each is timed with ``time.perf_counter_ns`` over batches; the figure is the best batch's mean (the
least disturbed by the rest of the machine), in microseconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path

from bench import data
from bench.servers import REPO


def _timeit(fn, seconds: float, batches: int = 5) -> float:
    """Best mean time of one call over ``batches`` batches sharing ``seconds``, in µs."""
    fn()  # warm caches
    n = 1
    start = time.perf_counter()
    while time.perf_counter() - start < seconds / (batches * 4):
        for _ in range(n):
            fn()
        n *= 2
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / n / 1000.0)
    return best


class Scene:
    """The shipped rules, a gateway identity stage and one caller, as the running gateway has them."""

    def __init__(self, user: str = "frank", rules: Path | None = None):
        from gateway.identity.devkeys import DEV_IDENTITY_CONFIG, mint_token
        from gateway.identity.stage import IdentityStage
        from gateway.ruleset import load_ruleset

        self.ruleset, errors = load_ruleset(rules or REPO / "rules")
        if self.ruleset is None:
            raise RuntimeError(f"rules do not load: {errors[:3]}")
        self.identity_stage = IdentityStage(DEV_IDENTITY_CONFIG, REPO)
        self.headers = {"Authorization": f"Bearer {mint_token(user, ttl_seconds=24 * 3600)}"}
        self.identity = self.identity_stage.identify(self.headers, False, self.ruleset.directory)
        # Tuesday 10:00 in Paris: inside every office-hours window of the example rules.
        self.now = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
        self.ip = ip_address("10.1.2.3")

    def context(self, target: str):
        from gateway.context.build import build_context

        ctx, _ = build_context(
            self.ruleset,
            request_id="0123456789abcdef",
            method="GET",
            raw_target=target,
            client_ip=self.ip,
            country=None,
            now=self.now,
            identity=self.identity,
            user_agent="bench",
        )
        return ctx


def run_micro(seconds: float = 2.0, user: str = "frank") -> dict[str, float]:
    """Each micro-benchmark's µs per call; ``seconds`` is the total budget for all of them."""
    from gateway.audit.events import audit_record
    from gateway.context.build import build_context
    from gateway.model import Flow
    from gateway.policy import PolicyEngine
    from gateway.response import apply_obligations

    scene = Scene(user)
    engine = scene.ruleset.engine
    uncached = PolicyEngine(engine.policy, engine.revision, cache_size=0)
    ctx = scene.context("/api/customers?page=1&page_size=50")
    decision = engine.decide(ctx)
    if not decision.allowed:
        raise RuntimeError(f"the benchmark caller {user!r} is refused: {decision.reason}")
    body = data.customer_list()
    share = seconds / 5

    def prepare():
        identity = scene.identity_stage.identify(scene.headers, False, scene.ruleset.directory)
        c, _ = build_context(
            scene.ruleset,
            request_id="0123456789abcdef",
            method="GET",
            raw_target="/api/customers?page=1&page_size=50",
            client_ip=scene.ip,
            country=None,
            now=scene.now,
            identity=identity,
            user_agent="bench",
        )
        return engine.decide(c)

    def filter_list():
        return apply_obligations(
            body,
            content_type="application/json",
            content_encoding=None,
            endpoint=ctx.endpoint,
            obligations=decision.obligations,
            identity=scene.identity,
            max_bytes=1 << 25,
        )

    result = filter_list()
    flow = Flow(request_id="0123456789abcdef", method="GET", raw_target="/api/customers")
    flow.ctx, flow.identity, flow.decision, flow.status = ctx, scene.identity, decision, 200
    flow.records_seen, flow.records_returned = result.records_seen, result.records_returned
    flow.record_ids, flow.fields_masked = result.record_ids, set(result.fields_masked)

    import orjson

    count_one, count_run = _counting(scene)
    return {
        # a decision computed (the rules evaluated), and one answered by the decision cache
        # (gateway.policy.cache: the same caller and facts again, as under load)
        "decide_us": _timeit(lambda: uncached.decide(ctx), share),
        "decide_cached_us": _timeit(lambda: engine.decide(ctx), share),
        "prepare_us": _timeit(prepare, share),
        "filter_50_us": _timeit(filter_list, share),
        "audit_record_us": _timeit(lambda: orjson.dumps(audit_record(flow), default=str), share),
        "count_event_us": _timeit(count_one, share / 2),
        "submit_to_payload_us": _timeit(count_run, share / 2) / RUN,
        "records_returned": float(result.records_returned),
        "fields_masked": float(len(result.fields_masked)),
    }


RUN = 8  # records per run in submit_to_payload (what a loaded worker's batch holds of one user)


def _counting(scene: Scene):
    """The two counting figures' callables: one record counted, and a run of RUN records taken to
    the script's payload (no Redis: the client is never connected)."""
    from datetime import timedelta

    import redis.asyncio as aioredis

    from detectors.events import count_event
    from gateway.audit.events import audit_record
    from gateway.model import Flow
    from gateway.signals import SignalsConfig
    from gateway.signals.counters import count_request
    from gateway.signals.redis_backend import RedisCounters
    from gateway.signals.thresholds import PlanCache

    ctx = scene.context("/api/customers/1")
    flow = Flow(request_id="0123456789abcdef", method="GET", raw_target="/api/customers/1")
    flow.ctx, flow.identity, flow.decision, flow.status = ctx, scene.identity, scene.ruleset.engine.decide(ctx), 200
    flow.records_seen = flow.records_returned = 1
    base = audit_record(flow)
    records = []
    for i in range(RUN):
        record = dict(base, time=(scene.now + timedelta(milliseconds=i)).isoformat())
        record["request_id"] = record["decision_id"] = f"{i:016x}"
        records.append(record)
    rules, plans = scene.ruleset.anomalies, PlanCache()
    backend = RedisCounters(aioredis.Redis(), SignalsConfig(backend="redis"))

    def run() -> bytes:
        requests = []
        for record in records:
            inc = count_event(record)
            assert inc is not None
            groups, _pairs = plans.plan(rules, inc, record.get("operation"))
            requests.append(count_request(inc, record, groups))
        return backend._payload(requests[0], more=requests[1:])

    return (lambda: count_event(records[0])), run
