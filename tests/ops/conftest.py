"""Real gateway processes for the operations tests: ``python -m gateway.server`` (== ``crmgw serve``)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import yaml

from gateway.identity.devkeys import DEV_IDENTITY_CONFIG
from tests.conftest import REPO, RULES

CRM_TOKEN = "demo-crm-service-token"
SERVE = [sys.executable, "-m", "gateway.server"]
# How long a started process may take to become ready: a deadline, not a wait (readiness is polled).
# Far above a cold start on a loaded 2-core machine, below the 60 s per-test timeout.
STARTUP_TIMEOUT = 40.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, *, upstream: str, port: int, audit: str = "audit.log", **extra) -> Path:
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "upstream": {"url": upstream.rstrip("/"), "credential": {"value": f"Bearer {CRM_TOKEN}"}, "total_timeout": 10},
        "rules_dir": str(RULES),
        "reload_interval": 0.5,
        "audit": {"path": str(folder / audit)},
        "identity": DEV_IDENTITY_CONFIG.model_dump(mode="json", exclude_defaults=True),
        **extra,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"gateway-{port}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def listening_pids(port: int, pids: list[int]) -> list[int]:
    """Those of ``pids`` holding a listening TCP socket on ``port`` (read from /proc)."""
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[1].endswith(f":{port:04X}"):
            listening.add(fields[9])
    found = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in listening:
                found.append(pid)
                break
    return found


def children_of(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def wait_ready(
    proc: asyncio.subprocess.Process,
    url: str,
    ready: Callable[[], bool] = lambda: True,
    timeout: float = STARTUP_TIMEOUT,
) -> None:
    """Poll ``url`` until it answers 200 and ``ready()`` holds; fail at once if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                out = await proc.stdout.read() if proc.stdout else b""
                raise AssertionError(f"{url}: the process exited {proc.returncode}: {out.decode()[-2000:]}")
            try:
                async with s.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
                    last = f"HTTP {r.status}"
                    if r.status == 200 and ready():
                        return
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = repr(exc)
            await asyncio.sleep(0.05)
    proc.kill()
    await proc.wait()
    raise AssertionError(f"{url} not ready after {timeout:g} s (last: {last})")


async def start_gateway(config: Path, *args: str, env: dict | None = None) -> asyncio.subprocess.Process:
    """Start a gateway process; wait until /readyz answers and, with --workers N, all N listen."""
    port = yaml.safe_load(config.read_text())["listen"]["port"]
    workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 0
    proc = await asyncio.create_subprocess_exec(
        *SERVE,
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )
    await wait_ready(
        proc, f"http://127.0.0.1:{port}/readyz", lambda: len(listening_pids(port, children_of(proc.pid))) == workers
    )
    return proc


async def stop(proc: asyncio.subprocess.Process, timeout: float = 30) -> tuple[int, str]:
    """SIGTERM, wait, return (exit code, output)."""
    if proc.returncode is None:
        proc.terminate()
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(errors="replace")


def audit_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
