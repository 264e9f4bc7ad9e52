"""Load from a separate process: wrk (Debian's package), one thread, fixed duration, N connections.

wrk's Lua ``done()`` hook prints the summary as one JSON line (requests, duration, p50/p99 in
microseconds, errors), so nothing is scraped from its human-readable table. A run in which any
response was not 2xx, or any socket error occurred, is marked invalid: a gateway that answers 403
fast must not look like a fast gateway.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

LUA = """
wrk.method = "GET"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "mean_us": %f, ' ..
    '"errors": {{"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclasses.dataclass
class LoadResult:
    config: str
    endpoint: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    valid: bool
    # CPU per request served, µs: the server's processes (all workers), and Redis's for the gateway
    cpu_us: float | None = None
    redis_cpu_us: float | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def find_wrk() -> str | None:
    return shutil.which("wrk")


def lua_script(workdir: Path, name: str, headers: dict[str, str]) -> Path:
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    path = workdir / f"{name}.lua"
    path.write_text(LUA.format(headers=lines))
    return path


def run_wrk(url: str, *, connections: int, duration: float, script: Path, timeout_s: int = 5) -> dict:
    argv = [
        find_wrk() or "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"wrk gave no summary: {out.stdout[-500:]} {out.stderr[-500:]}")


def measure(
    config: str,
    endpoint: str,
    url: str,
    *,
    connections: int,
    duration: float,
    script: Path,
    cpu: Callable[[], float] | None = None,
    redis_cpu: Callable[[], float] | None = None,
) -> LoadResult:
    before = (cpu() if cpu else 0.0, redis_cpu() if redis_cpu else 0.0)
    s = run_wrk(url, connections=connections, duration=duration, script=script)
    after = (cpu() if cpu else 0.0, redis_cpu() if redis_cpu else 0.0)
    errors = sum(s["errors"].values())
    seconds = s["duration_us"] / 1e6
    served = s["requests"]

    def per_request(i: int, given: object) -> float | None:
        return round((after[i] - before[i]) * 1e6 / served, 1) if given and served else None

    return LoadResult(
        cpu_us=per_request(0, cpu),
        redis_cpu_us=per_request(1, redis_cpu),
        config=config,
        endpoint=endpoint,
        connections=connections,
        rps=s["requests"] / seconds if seconds else 0.0,
        p50_ms=s["p50_us"] / 1000.0,
        p99_ms=s["p99_us"] / 1000.0,
        errors=errors,
        valid=errors == 0 and s["requests"] > 0,
    )
