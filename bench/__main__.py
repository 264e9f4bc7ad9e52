"""``python -m bench [--quick] [--json FILE]``: the gateway against its baselines, in one run.

``python -m bench startup [--runs N] [--model]`` measures start-up instead (bench/startup.py);
``python -m bench capacity [--users N]`` what the counters cost Redis per user and request (bench/capacity.py).

    (a) direct   wrk -> upstream nginx (static files)
    (b) nginx    wrk -> nginx proxy_pass -> upstream
    (c) gateway  wrk -> crmgw serve --workers N (example rules, filtering, audit) -> upstream
    (d) aiohttp  wrk -> bare aiohttp pass-through, N workers -> upstream

Runs are interleaved (a b c d, a b c d, ...) so drift of the machine affects every configuration
alike; each figure is the median over rounds. Without wrk or nginx only the micro-benchmarks run
(and the output says so).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench import load, micro, servers
from bench.report import ratios, render

ENDPOINTS = {"record": "/api/customers/1", "list": "/api/customers?page=1&page_size=50"}
CONFIGS = ("a", "b", "c", "d")
NAMES = {"a": "direct", "b": "nginx", "c": "gateway", "d": "aiohttp"}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a short run (a few seconds of load)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--workers", type=int, default=2, help="gateway / aiohttp / nginx proxy workers (default 2)")
    p.add_argument("--duration", type=float, help="seconds per load run (default 5; --quick 1)")
    p.add_argument("--connections", help="comma-separated connection counts (default 1,16,64; --quick 1,16)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3; --quick 1)")
    p.add_argument("--user", default="frank", help="the caller (default frank: support, masks on every record)")
    p.add_argument("--micro-only", action="store_true", help="only the in-process micro-benchmarks")
    p.add_argument("--keep", action="store_true", help="keep the work folder (configs, logs, audit log)")
    return p.parse_args(argv)


def run_load(args, workdir: Path, token: str) -> tuple[list[dict], dict]:
    conns = [int(c) for c in (args.connections or ("1,16" if args.quick else "1,16,64")).split(",")]
    duration = args.duration or (1.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 3)
    procs: list[servers.Proc] = []
    info: dict = {"workers": args.workers, "duration_s": duration, "rounds": rounds, "user": args.user}
    try:
        upstream = servers.start_upstream(workdir)
        procs.append(upstream)
        redis = servers.start_redis(workdir) if servers.signals_supported() else None
        if redis:
            procs.append(redis)
        info["redis_counters"] = redis is not None
        targets = {"a": upstream}
        targets["b"] = servers.start_nginx_proxy(workdir, upstream, args.workers)
        procs.append(targets["b"])
        targets["c"] = servers.start_gateway(workdir, upstream, args.workers, token, redis)
        procs.append(targets["c"])
        targets["d"] = servers.start_passthrough(workdir, upstream, args.workers)
        procs.append(targets["d"])
        script = load.lua_script(workdir, "auth", {"Authorization": f"Bearer {token}"})
        samples: dict[tuple, list[load.LoadResult]] = {}
        for _ in range(rounds):
            for endpoint, path in ENDPOINTS.items():
                for c in conns:
                    for config in CONFIGS:
                        r = load.measure(
                            config,
                            endpoint,
                            targets[config].url + path,
                            connections=c,
                            duration=duration,
                            script=script,
                            cpu=targets[config].cpu_seconds,
                            redis_cpu=redis.cpu_seconds if config == "c" and redis else None,
                        )
                        samples.setdefault((config, endpoint, c), []).append(r)
                        print(
                            f"  {NAMES[config]:8} {endpoint:6} c={c:<3} {r.rps:9.0f} req/s "
                            f"p50 {r.p50_ms:6.2f} ms p99 {r.p99_ms:6.2f} ms{'' if r.valid else '  INVALID'}",
                            file=sys.stderr,
                            flush=True,
                        )
        results = [_median(runs) for runs in samples.values()]
        audit = workdir / "audit.log"
        info["audit_lines"] = audit.read_bytes().count(b"\n") if audit.exists() else 0
        return [r.as_dict() for r in results], info
    finally:
        for proc in reversed(procs):
            proc.stop()


def _median(runs: list[load.LoadResult]) -> load.LoadResult:
    best = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
    best.p50_ms = statistics.median(r.p50_ms for r in runs)
    best.p99_ms = statistics.median(r.p99_ms for r in runs)
    best.valid = all(r.valid for r in runs)
    best.errors = sum(r.errors for r in runs)
    return best


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["capacity"]:
        from bench import capacity

        return capacity.main(argv[1:])
    if argv[:1] == ["counting"]:
        from bench import counting

        return counting.main(argv[1:])
    if argv[:1] == ["startup"]:
        from bench import startup

        return startup.main(argv[1:])
    if argv[:1] == ["audit-search"]:
        from bench import audit_search

        return audit_search.main(argv[1:])
    args = parse_args(argv)
    from gateway.identity.devkeys import mint_token

    token = mint_token(args.user, ttl_seconds=24 * 3600)
    out: dict = {"micro": micro.run_micro(0.5 if args.quick else 4.0, user=args.user)}
    missing = [name for name, found in (("wrk", load.find_wrk()), ("nginx", servers.find_nginx())) if not found]
    if args.micro_only or missing:
        out["load"], out["ratios"] = [], {}
        out["skipped_load"] = "--micro-only" if args.micro_only else f"not installed: {', '.join(missing)}"
    else:
        tmp = Path(tempfile.mkdtemp(prefix="crmgw-bench-"))
        try:
            out["load"], out["info"] = run_load(args, tmp, token)
        finally:
            if args.keep:
                print(f"work folder kept: {tmp}", file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        out["ratios"] = ratios(out["load"])
    print(render(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
