"""``python -m bench.export``: a large CSV export through the gateway (scoped, masked) and through nginx.

    upstream   nginx serving export.csv (bench/export_data.py: --size-mb, 1024 by default)
    (b) nginx  nginx proxy_pass to it, one worker (bench/servers.py)
    (c) crmgw  ``crmgw serve`` with one worker, Redis counters on, the example rules plus one policy
               letting a sales rep export their own customers with complaints removed, phones
               redacted and e-mails hashed (the caller: alice, a quarter of the rows are hers)

curl downloads the export from each, interleaved over ``--rounds``; the figure per server is the
median. MB/s is the *upstream* body (the whole file) per second of the download, so both servers are
measured on the same work in; the gateway sends out only the caller's rows. MB/CPU-s divides the same
bytes by the CPU seconds the server's processes used during the download (/proc): the throughput of
one worker with a core to itself, which a shared, loaded machine does not give the wall clock. Peak RSS is VmHWM of the
gateway's worker (one process) and of nginx's worker, from /proc after the runs. The audit line of
every gateway run is checked: status 200, every row seen, the caller's rows returned, no cut.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench import export_data, servers
from gateway.identity.devkeys import mint_token

PATH = "/api/customers/export.csv"
POLICY = """format: crmgw.rules/v1
rules:
  - id: bench-sales-export-own-masked
    title: Sales reps export their own customers with complaints removed, phones redacted, e-mails hashed
    match: {operations: [customers.export]}
    allow:
      role: {in: [sales_rep]}
    data_scope: {sales_rep: own}
    mask:
      - {field: complaints, op: remove}
      - {field: phone, op: redact, keep_last: 4}
      - {field: email, op: hash}
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=1024, help="size of the generated export (default 1024)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--keep", action="store_true", help="keep the work folder (configs, logs, audit log)")
    return p.parse_args(argv)


def peak_rss_mb(pid: int) -> float:
    """VmHWM (the peak resident set) of one process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def download(url: str, token: str | None) -> dict[str, Any]:
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url]
    if token:
        argv[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    code, size, seconds = out.stdout.split()
    return {"status": int(code), "bytes_out": int(size), "seconds": float(seconds), "curl_rc": out.returncode}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    if servers.find_nginx() is None or shutil.which("curl") is None:
        raise SystemExit("bench.export needs nginx and curl (apt-get install -y nginx-light curl)")
    started = time.monotonic()
    rows = export_data.write_csv(workdir / "export.csv", args.size_mb << 20)
    size = (workdir / "export.csv").stat().st_size
    info: dict[str, Any] = {"file_bytes": size, "rows": rows, "generate_s": round(time.monotonic() - started, 1)}
    rules = workdir / "rules"
    shutil.copytree(servers.REPO / "rules", rules)
    (rules / "policies" / "60-bench-export.yaml").write_text(POLICY)
    procs: list[servers.Proc] = []
    try:
        upstream = servers.start_upstream(workdir)
        procs.append(upstream)
        redis = servers.start_redis(workdir)
        if redis is not None:
            procs.append(redis)
        nginx = servers.start_nginx_proxy(workdir, upstream, 1)
        procs.append(nginx)
        # A 1 GB export outlasts the default whole-request timeouts (30 s upstream, 60 s overall).
        upstream_section = {
            "url": upstream.url,
            "credential": {"value": f"Bearer {servers.CRM_TOKEN}"},
            "total_timeout": 1800,
        }
        extra = {"rules_dir": str(rules), "upstream": upstream_section, "limits": {"request_timeout": 0}}
        gateway = servers.start_gateway(workdir, upstream, 1, mint_token("frank"), redis, extra=extra)
        procs.append(gateway)
        token = mint_token("alice")
        runs: dict[str, list[dict[str, Any]]] = {"nginx": [], "gateway": []}
        for _ in range(args.rounds):
            for name, proc, key in (("nginx", nginx, None), ("gateway", gateway, token)):
                cpu = proc.cpu_seconds()
                measured = download(proc.url + PATH, key)
                measured["cpu_s"] = proc.cpu_seconds() - cpu
                runs[name].append(measured)
        nginx_workers = children(nginx.popen.pid) or [nginx.popen.pid]
        rss = {
            "gateway": peak_rss_mb(gateway.popen.pid),
            "nginx": max(peak_rss_mb(pid) for pid in nginx_workers),
        }
        audit = [orjson.loads(line) for line in (workdir / "audit.log").read_text().splitlines()]
        # the request lines (a streamed export also writes a "stream started" line before its rows)
        exports = [a for a in audit if a.get("path") == PATH and a.get("phase") != "stream-started"]
    finally:
        for proc in reversed(procs):
            proc.stop()
    expected = export_data.expected_rows(rows)
    for line in exports:
        if (line["status"], line["records_seen"], line["records_returned"]) != (200, rows, expected) or line.get(
            "signals", {}
        ).get("stream"):
            raise SystemExit(f"gateway export run INVALID: {line}")
    result: dict[str, Any] = {**info, "rounds": args.rounds, "caller_rows": expected, "servers": {}}
    for name, measured in runs.items():
        if any(m["status"] != 200 or m["curl_rc"] for m in measured):
            raise SystemExit(f"{name} export run INVALID: {measured}")
        seconds = statistics.median(m["seconds"] for m in measured)
        cpu_s = statistics.median(m["cpu_s"] for m in measured)
        result["servers"][name] = {
            "mb_per_s": round(size / seconds / 1e6, 1),
            # per second of the server's own CPU: what one worker does with a core to itself
            "mb_per_cpu_s": round(size / cpu_s / 1e6, 1) if cpu_s else None,
            "cpu_s": round(cpu_s, 2),
            "seconds": round(seconds, 2),
            "bytes_out": measured[0]["bytes_out"],
            "peak_rss_mb": round(rss[name], 1),
            "runs_s": [m["seconds"] for m in measured],
        }
    result["gateway_vs_nginx"] = round(
        result["servers"]["gateway"]["mb_per_s"] / result["servers"]["nginx"]["mb_per_s"], 3
    )
    return result


def render(result: dict[str, Any]) -> str:
    lines = [
        f"export: {result['file_bytes'] / 1e6:.0f} MB CSV, {result['rows']} rows "
        f"({result['caller_rows']} the caller's), median of {result['rounds']} rounds",
        f"  {'server':<9} {'MB/s in':>8} {'MB/CPU-s':>9} {'seconds':>8} {'MB out':>8} {'peak RSS MB':>12}",
    ]
    for name, s in result["servers"].items():
        lines.append(
            f"  {name:<9} {s['mb_per_s']:>8.1f} {s['mb_per_cpu_s'] or 0:>9.1f} {s['seconds']:>8.2f}"
            f" {s['bytes_out'] / 1e6:>8.1f} {s['peak_rss_mb']:>12.1f}"
        )
    lines.append(f"  gateway / nginx throughput: {result['gateway_vs_nginx']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="crmgw-bench-export-"))
    try:
        result = run(args, workdir)
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
