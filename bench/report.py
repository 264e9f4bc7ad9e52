"""The benchmark's table, ratios and targets (issue 5), from the raw results."""

from __future__ import annotations

NAMES = {"a": "direct", "b": "nginx", "c": "gateway", "d": "aiohttp"}
# (what, ratio key or figure, comparison, bound)
TARGETS = (
    ("gateway/aiohttp throughput, small record", "c/d record", ">=", 0.80),
    ("gateway/aiohttp throughput, 10 KB filtered list", "c/d list", ">=", 0.65),
    ("gateway/nginx throughput, small record", "c/b record", ">=", 0.15),
    ("gateway/nginx throughput, 10 KB filtered list", "c/b list", ">=", 0.15),
    ("added p50 over direct, unloaded (ms)", "added_p50_ms record", "<=", 1.0),
    ("one decision (µs)", "decide_us", "<=", 30.0),
)


def _index(load: list[dict]) -> dict[tuple, dict]:
    return {(r["config"], r["endpoint"], r["connections"]): r for r in load}


def ratios(load: list[dict]) -> dict:
    """Throughput ratios c/a, c/b, c/d per endpoint and connection count, and the added latency.

    ``c/x <endpoint>`` (no connection count) is taken at the highest connection count measured,
    where the servers are saturated; ``added_p50_ms <endpoint>`` at the lowest (unloaded).
    """
    idx = _index(load)
    out: dict = {}
    conns = sorted({r["connections"] for r in load})
    for endpoint in sorted({r["endpoint"] for r in load}):
        for c in conns:
            gw = idx.get(("c", endpoint, c))
            if gw is None:
                continue
            for base in "abd":
                other = idx.get((base, endpoint, c))
                if other and other["rps"]:
                    out[f"c/{base} {endpoint} c={c}"] = round(gw["rps"] / other["rps"], 3)
        top, low = conns[-1], conns[0]
        for base in "abd":
            key = f"c/{base} {endpoint} c={top}"
            if key in out:
                out[f"c/{base} {endpoint}"] = out[key]
        for config in "abcd":  # CPU per request where the servers are saturated
            row = idx.get((config, endpoint, top))
            if row and row.get("cpu_us") is not None:
                out[f"cpu_us {NAMES[config]} {endpoint}"] = row["cpu_us"]
            if row and row.get("redis_cpu_us") is not None:
                out[f"cpu_us redis {endpoint}"] = row["redis_cpu_us"]
        a, c = idx.get(("a", endpoint, low)), idx.get(("c", endpoint, low))
        if a and c:
            out[f"added_p50_ms {endpoint}"] = round(c["p50_ms"] - a["p50_ms"], 3)
    return out


def targets(result: dict) -> list[tuple[str, float | None, str, float, bool | None]]:
    figures = {**result.get("ratios", {}), **result.get("micro", {})}
    rows = []
    for what, key, op, bound in TARGETS:
        value = figures.get(key)
        ok = None if value is None else (value >= bound if op == ">=" else value <= bound)
        rows.append((what, value, op, bound, ok))
    return rows


def render(result: dict) -> str:
    lines = []
    micro = result.get("micro", {})
    lines.append("micro-benchmarks (best batch mean, µs per call)")
    for key in ("decide_us", "prepare_us", "filter_50_us", "audit_record_us", "count_event_us", "submit_to_payload_us"):
        if key in micro:
            lines.append(f"  {key:<18} {micro[key]:9.1f}")
    load = result.get("load") or []
    if result.get("skipped_load"):
        lines.append(f"load benchmark skipped: {result['skipped_load']}")
    if load:
        info = result.get("info", {})
        lines.append("")
        lines.append(
            f"load (wrk -t1, {info.get('duration_s')} s x {info.get('rounds')} rounds, median; "
            f"{info.get('workers')} workers; caller {info.get('user')}; Redis counters "
            f"{'ON' if info.get('redis_counters') else 'OFF (signals stage not configured yet)'})"
        )
        lines.append(f"  {'endpoint':<8} {'conns':>5}  {'config':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for r in sorted(load, key=lambda r: (r["endpoint"], r["connections"], r["config"])):
            flag = "" if r["valid"] else f"  INVALID ({r['errors']} errors)"
            lines.append(
                f"  {r['endpoint']:<8} {r['connections']:>5}  {r['config']} {NAMES[r['config']]:<6} "
                f"{r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}{flag}"
            )
        lines.append("")
        lines.append("ratios (gateway throughput / baseline; added p50 at the lowest connection count)")
        for key, value in result.get("ratios", {}).items():
            if "c=" in key:
                lines.append(f"  {key:<26} {value:7.3f}")
        lines.append("")
        cpu = {k: v for k, v in result.get("ratios", {}).items() if k.startswith("cpu_us ")}
        if cpu:
            lines.append("CPU per request at the highest connection count (µs; all of a server's processes)")
            for key, value in cpu.items():
                lines.append(f"  {key[len('cpu_us ') :]:<26} {value:9.1f}")
            lines.append("")
    lines.append("targets")
    for what, value, op, bound, ok in targets(result):
        shown = "n/a" if value is None else f"{value:.3f}"
        verdict = "not measured" if ok is None else ("met" if ok else "MISSED")
        lines.append(f"  {what:<48} {shown:>9} {op} {bound:<5} {verdict}")
    return "\n".join(lines)
