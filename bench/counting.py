"""``python -m bench counting``: what counting one request costs, in the signals worker and in Redis.

The signals stage of a gateway (gateway/signals: the worker, the Redis script) is fed audit records
of the benchmark's caller reading ``/api/customers/1`` (the shipped rules, 1 ms apart: one busy
user, as under wrk), against a private ``redis-server``, and drained every ``batch`` records: a
batch of 1 is an idle gateway, larger batches what the worker sends under load. For each batch size:

    worker_us     CPU of this process (the worker's Python: planning, payload, redis-py, parsing,
                  thresholds) per counted record
    redis_us      CPU of redis-server per counted record (INFO cpu)
    commands      commands Redis ran per counted record (INFO commandstats: the script's calls)

Options: ``--events N`` (default 3000, after 200 to warm up), ``--batches 1,8,32``, ``--json FILE``.
Not a test: the figures depend on the machine (and on what else runs on it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import servers

WARM_UP = 200


def records(n: int) -> list[dict[str, Any]]:
    """``n`` audit records of the benchmark caller reading one customer, 1 ms apart."""
    from bench.micro import Scene
    from gateway.audit.events import audit_record
    from gateway.model import Flow

    scene = Scene()
    ctx = scene.context("/api/customers/1")
    decision = scene.ruleset.engine.decide(ctx)
    flow = Flow(request_id="0123456789abcdef", method="GET", raw_target="/api/customers/1")
    flow.ctx, flow.identity, flow.decision, flow.status = ctx, scene.identity, decision, 200
    flow.records_seen = flow.records_returned = 1
    base = audit_record(flow)
    out = []
    for i in range(n):
        rec = dict(base)
        rec["time"] = (scene.now + timedelta(milliseconds=i)).isoformat()
        rec["request_id"] = rec["decision_id"] = f"{i:016x}"
        out.append(rec)
    return out


async def measure(url: str, recs: list[dict[str, Any]], batch: int) -> dict[str, float]:
    import redis.asyncio as aioredis

    from bench.micro import Scene
    from gateway.signals import SignalsConfig, build_signals

    admin = aioredis.from_url(url)
    await admin.flushall()
    rules = Scene().ruleset
    stage = build_signals(SignalsConfig(backend="redis", batch_wait=0), redis_url=url, alerts=None)
    await stage.start()
    try:
        for rec in recs[:WARM_UP]:
            stage.submit(None, rec, rules)  # type: ignore[arg-type]  # the flow is not read
        await stage.drain()
        await admin.config_resetstat()
        before = await admin.info("cpu")
        cpu = time.process_time()
        for start in range(WARM_UP, len(recs), batch):
            for rec in recs[start : start + batch]:
                stage.submit(None, rec, rules)  # type: ignore[arg-type]
            await stage.drain()
        cpu = time.process_time() - cpu
        after = await admin.info("cpu")
        stats = await admin.info("commandstats")
        counted = len(recs) - WARM_UP
        if stage.dropped:
            raise RuntimeError(f"{stage.dropped} records were not counted")
    finally:
        await stage.stop()
        await admin.aclose()
    redis_cpu = sum(after[k] - before[k] for k in ("used_cpu_user", "used_cpu_sys"))
    inner = sum(v["calls"] for k, v in stats.items() if not k.startswith(("cmdstat_evalsha", "cmdstat_info")))
    return {
        "batch": batch,
        "worker_us": round(cpu / counted * 1e6, 1),
        "redis_us": round(redis_cpu / counted * 1e6, 1),
        "commands": round(inner / counted, 2),
        "script_calls": round(stats.get("cmdstat_evalsha", {}).get("calls", 0) / counted, 3),
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench counting", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=3000, help="records counted per batch size (default 3000)")
    p.add_argument("--batches", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="crmgw-bench-counting-"))
    redis = servers.start_redis(workdir)
    if redis is None:
        print("redis-server is not installed: nothing measured", file=sys.stderr)
        return 1
    try:
        recs = records(WARM_UP + args.events)
        url = f"redis://127.0.0.1:{redis.port}/0"
        rows = [asyncio.run(measure(url, recs, int(b))) for b in args.batches.split(",")]
    finally:
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print("counting one request (µs of CPU per counted record; commands Redis ran per record)")
    print(f"  {'batch':>5} {'worker_us':>10} {'redis_us':>9} {'commands':>9} {'script calls':>13}")
    for r in rows:
        print(f"  {r['batch']:>5} {r['worker_us']:>10} {r['redis_us']:>9} {r['commands']:>9} {r['script_calls']:>13}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0
