"""``python -m bench capacity``: what the behaviour counters cost Redis, per user and per request.

A simulated day of traffic (``--users`` users, ``--requests`` each on average, working hours in
each user's time zone, a realistic mix of views, lists, updates, exports and deletes) is counted by
the gateway's own signals stage (gateway.signals, the example anomaly rules) on a private
``redis-server``. Read off Redis afterwards:

    memory     ``INFO memory`` used_memory before and after, per active user; the keys are then
               sampled (``MEMORY USAGE``, ``TTL``) for the steady state per user (see
               ``sample_keys``: a bucket key counts for as many days as it lives)
    commands   ``INFO commandstats``: commands the gateway sends per request (EVALSHA, ...) and
               the Redis CPU per request (used_cpu_user + used_cpu_sys)

Memory and commands per request depend on the traffic per user, so the table uses the measured
day's requests per user; run it with the ``--requests`` your CRM sees. From those and the gateway's
CPU per request (``--gateway-cpu-us``, e.g. bench's
``cpu_us gateway record``) it prints an operator's table for 1k / 10k / 100k users: peak requests
per second, gateway cores, Redis memory and ops/s. The assumptions (requests per user per day, the
share in the busiest hour, the utilisation target) are options and are printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import random
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench import servers

REPO = Path(__file__).resolve().parent.parent
DAY = 86400
ZONES = ("Europe/Paris", "Europe/London", "America/New_York")
ROLES = ("sales_rep", "sales_rep", "sales_rep", "support", "sales_manager")
# operation, share of a user's requests, records returned (min, max)
MIX = (
    ("customers.view", 0.50, (1, 1)),
    ("customers.list", 0.22, (10, 50)),
    ("contacts.view", 0.12, (1, 1)),
    ("deals.view", 0.08, (1, 1)),
    ("customers.update", 0.06, (1, 1)),
    ("customers.export", 0.015, (20, 200)),
    ("customers.delete", 0.005, (1, 1)),
)
SCALES = (1_000, 10_000, 100_000)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench capacity", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=10_000, help="simulated users (default 10000)")
    p.add_argument("--requests", type=float, default=40, help="mean requests per user per day (default 40)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--sample-keys", type=int, default=3000, help="keys sampled with MEMORY USAGE")
    p.add_argument("--gateway-cpu-us", type=float, default=900.0, help="gateway CPU per request (bench's cpu_us)")
    p.add_argument("--peak-share", type=float, default=0.15, help="share of a day's requests in the busiest hour")
    p.add_argument("--utilisation", type=float, default=0.6, help="target CPU utilisation of a gateway core")
    p.add_argument("--json", metavar="FILE", help="write the measurements and the table as JSON")
    return p.parse_args(argv)


def day_of_traffic(users: int, mean_requests: float, seed: int) -> list[dict[str, Any]]:
    """Audit records (the fields counting reads) for one simulated day, in time order."""
    rng = random.Random(seed)
    day0 = datetime(2026, 3, 3, tzinfo=UTC)  # a Tuesday
    ops = [m[0] for m in MIX]
    weights = [m[1] for m in MIX]
    returned = {m[0]: m[2] for m in MIX}
    records: list[dict[str, Any]] = []
    for u in range(users):
        user, tz = f"u{u:06d}", ZONES[u % len(ZONES)]
        zone = ZoneInfo(tz)
        n = max(1, int(rng.lognormvariate(math.log(mean_requests) - 0.18, 0.6)))
        ips = [f"10.{u % 250}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(rng.choice((1, 1, 2, 3)))]
        role = ROLES[u % len(ROLES)]
        start_local = datetime(2026, 3, 3, 8, 0, tzinfo=zone)
        for _ in range(n):
            off_hours = rng.random() < 0.03
            hours = rng.uniform(0, 24) if off_hours else rng.uniform(0, 10)
            when = max(day0, (start_local + timedelta(hours=hours)).astimezone(UTC))
            op = rng.choices(ops, weights)[0]
            lo, hi = returned[op]
            count = rng.randint(lo, hi)
            single = op.endswith((".view", ".update", ".delete"))
            rid = str(rng.randrange(1, 50_000)) if single else None
            ids = [rid] if rid else [str(rng.randrange(1, 50_000)) for _ in range(min(count, 50))]
            records.append(
                {
                    "time": when.isoformat(),
                    "request_id": f"r{len(records):08d}",
                    "user": user,
                    "roles": [role],
                    "timezone": tz,
                    "client_ip": rng.choice(ips),
                    "country": "FR" if tz == "Europe/Paris" else "GB" if tz == "Europe/London" else "US",
                    "method": "GET",
                    "path": f"/api/{op}",
                    "user_agent": "crm-client/1.0",
                    "operation": op,
                    "resource_id": rid,
                    "effect": "allow",
                    "status": 200,
                    "records_returned": count,
                    "record_ids": ids,
                    "targets": None,
                    "reason": "ok",
                }
            )
    records.sort(key=lambda r: r["time"])
    return records


class StepClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 3, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _cpu(info: dict[str, Any]) -> float:
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from gateway.rulestore import RuleStore
    from gateway.signals import SignalsConfig, build_signals

    logging.getLogger("crmgw").setLevel(logging.ERROR)  # findings on simulated users are not news

    store, errors = RuleStore.open(REPO / "rules")
    if store is None:
        raise SystemExit(f"the example rules do not load: {errors}")
    ruleset = store.current
    admin = aioredis.from_url(redis_url, decode_responses=True)
    config = SignalsConfig(backend="redis")
    clock = StepClock()
    stage = build_signals(config, redis_url=redis_url, alerts=None, clock=clock)
    await stage.start()
    try:
        t_gen = time.perf_counter()
        records = day_of_traffic(args.users, args.requests, args.seed)
        gen_s = time.perf_counter() - t_gen
        await admin.config_resetstat()
        mem0 = int((await admin.info("memory"))["used_memory"])
        cpu0 = _cpu(await admin.info("cpu"))
        t0 = time.perf_counter()
        for i, rec in enumerate(records):
            clock.now = datetime.fromisoformat(rec["time"])
            stage.submit(None, rec, ruleset)  # type: ignore[arg-type]  # the flow is not read when counting
            if i % 2000 == 1999:
                await stage.drain()
        await stage.drain()
        count_s = time.perf_counter() - t0
        cpu_s = _cpu(await admin.info("cpu")) - cpu0
        mem1 = int((await admin.info("memory"))["used_memory"])
        stats = await admin.info("commandstats")
        keys = await sample_keys(admin, args.sample_keys)
    finally:
        await stage.stop()
        await admin.aclose()
    requests = len(records)
    active = len({r["user"] for r in records})
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    client_calls = sum(n for c, n in calls.items() if c in ("evalsha", "eval", "xadd", "publish", "pipeline"))
    script_calls = sum(n for c, n in calls.items() if c not in ("evalsha", "eval", "info", "config|resetstat"))
    mem_day = mem1 - mem0
    steady = keys["steady_bucketed_bytes_per_user"] + keys["steady_per_user_keys_bytes"]
    return {
        "users": args.users,
        "active_users": active,
        "requests": requests,
        "requests_per_user": requests / active,
        "generate_s": round(gen_s, 2),
        "count_s": round(count_s, 2),
        "counted": stage.counted,
        "dropped": stage.dropped,
        "redis_cpu_us_per_request": round(cpu_s / requests * 1e6, 1),
        "client_commands_per_request": round(client_calls / requests, 3),
        "commands_inside_scripts_per_request": round(script_calls / requests, 1),
        "commandstats_calls": calls,
        "memory_after_one_day_bytes": mem_day,
        "memory_per_active_user_after_one_day_bytes": round(mem_day / active),
        "history_days": config.history_days,
        "key_sample": keys,
        "steady_state_bytes_per_user": round(steady),
    }


BUCKETED = re.compile(r":(?:c|d):\d+:\d+$|:hmax:\d+$")


async def sample_keys(admin: Any, sample: int) -> dict[str, Any]:
    """Bytes per user in steady state, from a sample of the keys one day of traffic left.

    A bucketed key (a window bucket, a daily total, an HLL of a period) is created once per bucket
    and lives its TTL: with the same traffic every day, ``TTL / DAY`` days' worth of them exist at
    any time, so it counts ``size * TTL / DAY``. Every other key (first-seen sets, the recent list,
    the epoch marker, the last id viewed) is one per user, refreshed in place: it counts once.
    (The simulated day runs in seconds of real time, so every key is still there when sampled.)
    """
    seen: list[str] = []
    async for key in admin.scan_iter(match="crmgw:*", count=1000):
        seen.append(key)
    users = {k.split("}")[0] for k in seen}
    random.Random(1).shuffle(seen)
    picked = seen[:sample]
    bucketed = singleton = day_bytes = 0.0
    kinds: Counter[str] = Counter()
    for key in picked:
        size = int(await admin.memory_usage(key) or 0)
        day_bytes += size
        if BUCKETED.search(key):
            ttl = max(0, int(await admin.ttl(key)))
            bucketed += size * ttl / DAY
            kinds["bucketed"] += 1
        else:
            singleton += size
            kinds["per-user"] += 1
    scale = len(seen) / max(1, len(picked))
    n_users = max(1, len(users))
    return {
        "crmgw_keys": len(seen),
        "keys_per_user": round(len(seen) / n_users, 1),
        "sampled": len(picked),
        "by_kind": dict(kinds),
        "mean_key_bytes": round(day_bytes / max(1, len(picked)), 1),
        "one_day_bytes_per_user": round(day_bytes * scale / n_users),
        "steady_bucketed_bytes_per_user": round(bucketed * scale / n_users),
        "steady_per_user_keys_bytes": round(singleton * scale / n_users),
    }


def table(m: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for users in SCALES:
        per_day = users * m["requests_per_user"]
        peak_rps = per_day * args.peak_share / 3600
        cores = peak_rps * args.gateway_cpu_us / 1e6 / args.utilisation
        rows.append(
            {
                "users": users,
                "requests_per_day": int(per_day),
                "peak_rps": round(peak_rps, 1),
                "gateway_cores": max(1, math.ceil(cores)),
                "gateway_cores_exact": round(cores, 2),
                "redis_memory_mib": round(users * m["steady_state_bytes_per_user"] * 1.25 / 2**20, 1),
                "redis_client_ops_per_s": round(peak_rps * m["client_commands_per_request"], 1),
                "redis_script_ops_per_s": round(peak_rps * m["commands_inside_scripts_per_request"]),
                "redis_cpu_share": round(peak_rps * m["redis_cpu_us_per_request"] / 1e6, 3),
            }
        )
    return rows


def render(m: dict[str, Any], rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    out = [
        f"capacity: {m['requests']} requests from {m['active_users']} users counted in {m['count_s']} s "
        f"({m['dropped']} dropped)",
        f"  Redis CPU per request          {m['redis_cpu_us_per_request']} µs",
        f"  commands the gateway sends     {m['client_commands_per_request']} per request "
        f"({m['commands_inside_scripts_per_request']} run inside the counting script)",
        f"  memory after one day           {m['memory_per_active_user_after_one_day_bytes']} bytes per active user "
        f"({m['key_sample']['keys_per_user']} keys)",
        f"  steady state ({m['history_days']} days kept)    {m['steady_state_bytes_per_user']} bytes per user "
        f"(buckets {m['key_sample']['steady_bucketed_bytes_per_user']} B, "
        f"per-user keys {m['key_sample']['steady_per_user_keys_bytes']} B)",
        "",
        f"operator's table: {m['requests_per_user']:.0f} requests per user per day (as measured), {args.peak_share:.0%} of them in the "
        f"busiest hour, gateway {args.gateway_cpu_us:g} µs CPU per request at {args.utilisation:.0%} utilisation, "
        "Redis memory +25 % for fragmentation",
        "| users | peak req/s | gateway cores | Redis memory | Redis commands/s (in scripts) | Redis CPU |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['users']:,} | {r['peak_rps']:,} | {r['gateway_cores']} ({r['gateway_cores_exact']}) | "
            f"{r['redis_memory_mib']:,} MiB | {r['redis_client_ops_per_s']:,} ({r['redis_script_ops_per_s']:,}) | "
            f"{r['redis_cpu_share']:.0%} of a core |"
        )
    return "\n".join(out)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crmgw-capacity-") as tmp:
        redis = servers.start_redis(Path(tmp))
        if redis is None:
            print("capacity: redis-server is not installed", file=sys.stderr)
            return 2
        try:
            m = asyncio.run(measure(args, f"redis://127.0.0.1:{redis.port}/0"))
        finally:
            redis.stop()
    rows = table(m, args)
    print(render(m, rows, args))
    if args.json:
        Path(args.json).write_text(json.dumps({"measured": m, "table": rows, "assumptions": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
