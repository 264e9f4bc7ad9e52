"""``python -m bench audit-search [--lines N] [--queries Q] [--keep DIR]``: the audit index at scale.

Generates N audit lines (default 1,000,000, in four rotated files, shaped like the gateway's),
builds the index (gateway.audit.index) and reports the build time, the index size, and the p50/p95
time of user + operation + time-range queries (one console page: 100 lines, newest first), next
to the same query answered by the scan of gateway.audit.search over every file. Every page the
index answers for the checked queries is compared with the scan's: the run fails (exit 1) when a
single line differs.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from gateway.audit.index import AuditIndex
from gateway.audit.search import AuditQuery, search

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OPERATIONS = [
    f"{kind}.{verb}"
    for kind in ("customers", "orders", "invoices", "contacts")
    for verb in ("list", "view", "export", "update", "delete")
]
REASONS = ("allowed", "role-unauthorized", "time-window-outside", "source-ip-unauthorized")
AGENTS = ("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", "crm-sync/2.1", "curl/8.0", "python-requests/2.31")
SPAN_DAYS = 60


def record(i: int, rng: random.Random, n: int, users: int) -> dict[str, Any]:
    """Line ``i`` of ``n``: times increase with i over SPAN_DAYS days (a little jitter, as written)."""
    user = f"user{rng.randrange(users):03d}"
    deny = rng.random() < 0.1
    when = T0 + timedelta(seconds=SPAN_DAYS * 86400 * i / n + rng.uniform(-2, 2))
    op = rng.choice(OPERATIONS)
    return {
        "time": when.isoformat(timespec="milliseconds"),
        "decision_id": f"{i:08x}{rng.getrandbits(64):016x}",
        "request_id": f"{i:08x}",
        "labels": {"version": "1.0", "revision": "r1"},
        "user": user,
        "roles": ["sales_rep"],
        "auth": "jwt",
        "mfa": False,
        "team": f"team{hash(user) % 7}",
        "client_ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "country": rng.choice(("DE", "FR", "CN", "US")),
        "method": "GET",
        "path": f"/api/{op.split('.')[0]}/{rng.randrange(100000)}",
        "query": {},
        "user_agent": rng.choice(AGENTS),
        "operation": op,
        "effect": "deny" if deny else "allow",
        "reason": rng.choice(REASONS[1:]) if deny else "allowed",
        "rules": [f"rule-{op.split('.')[0]}"],
        "reasons": ["role-ok", "time-window-ok"],
        "shadow": [{"rule": "shadow-bulk", "would": "deny", "reason": "x"}] if rng.random() < 0.02 else [],
        "status": 403 if deny else 200,
        "records_returned": rng.randrange(50),
        "latency_ms": round(rng.uniform(1, 30), 3),
    }


def generate(path: Path, n: int, *, users: int = 200, files: int = 4, seed: int = 7) -> None:
    """``n`` lines in ``files`` files: ``audit.log.{files-1}`` (oldest) ... ``audit.log`` (newest)."""
    rng = random.Random(seed)
    per = -(-n // files)
    for k in range(files):
        name = path.name if k == files - 1 else f"{path.name}.{files - 1 - k}"
        with open(path.with_name(name), "wb") as out:
            chunk = [orjson.dumps(record(i, rng, n, users)) + b"\n" for i in range(k * per, min(n, (k + 1) * per))]
            out.write(b"".join(chunk))


def queries(count: int, rng: random.Random, users: int = 200) -> list[AuditQuery]:
    out = []
    for _ in range(count):
        start = T0 + timedelta(days=rng.uniform(0, SPAN_DAYS - 7))
        out.append(
            AuditQuery(
                user=f"user{rng.randrange(users):03d}",
                operation=rng.choice(OPERATIONS),
                since=start,
                until=start + timedelta(days=rng.choice((1, 3, 7))),
            )
        )
    return out


def all_pages(index: AuditIndex, query: AuditQuery, limit: int) -> list[dict[str, Any]]:
    records, before = [], None
    while True:
        page = index.query(query, limit=limit, before=before)
        records += page.records
        if not page.more:
            return records
        before = page.positions[-1]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench audit-search", description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=200, help="timed index queries (default 200)")
    p.add_argument("--checked", type=int, default=5, help="queries also answered by the full scan (default 5)")
    p.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it")
    args = p.parse_args(argv)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="crmgw-audit-search-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "audit.log"
    try:
        t = time.perf_counter()
        generate(path, args.lines)
        log_bytes = sum(f.stat().st_size for f in folder.glob("audit.log*"))
        print(f"generated {args.lines:,} lines ({log_bytes / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
        index = AuditIndex(path)
        t = time.perf_counter()
        built = index.rebuild()
        print(
            f"index built: {built.lines:,} lines in {time.perf_counter() - t:.1f} s, {index.size_bytes() / 1e6:.0f} MB"
        )
        rng = random.Random(11)
        timings, hits = [], []
        for q in queries(args.queries, rng):
            t = time.perf_counter()
            page = index.query(q, limit=100)
            timings.append((time.perf_counter() - t) * 1000)
            hits.append(len(page.records))
        q50, q95 = statistics.median(timings), statistics.quantiles(timings, n=20)[18]
        print(
            f"index: user+operation+time-range, 100 per page: p50 {q50:.1f} ms, p95 {q95:.1f} ms, max {max(timings):.1f} ms ({args.queries} queries, {statistics.mean(hits):.0f} lines a page on average)"
        )
        failures = 0
        scan_ms = []
        for q in queries(args.checked, random.Random(13)):
            t = time.perf_counter()
            scanned = search(path, q, limit=10**9, max_bytes=1 << 62).records
            scan_ms.append((time.perf_counter() - t) * 1000)
            indexed = all_pages(index, q, 100)
            same = indexed == scanned
            failures += not same
            print(
                f"  {q.user} {q.operation} {q.since:%m-%d}..{q.until:%m-%d}: {len(scanned)} lines, index {'==' if same else '!='} scan"
            )
        print(
            f"scan of every file (the same queries): median {statistics.median(scan_ms):.0f} ms; equality: {args.checked - failures}/{args.checked}"
        )
        return 1 if failures else 0
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
