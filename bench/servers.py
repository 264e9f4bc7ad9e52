"""Starting and stopping the benchmark's servers, each a real process on its own loopback port.

upstream   nginx serving static files (the CRM stand-in, never the bottleneck); bench/export.py
           adds a large CSV export beside them
(b) nginx  proxy_pass to the upstream, keep-alive pool, N workers
(c) crmgw  ``crmgw serve --workers N`` with a generated gateway.yaml and the example rules
(d) bare   bench.passthrough, N workers
redis      redis-server, for the gateway's counters once the signals stage is configured
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from bench import data

REPO = Path(__file__).resolve().parent.parent
CRM_TOKEN = "bench-crm-service-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


class Proc:
    """One started server: its process, where it listens, and how to stop it."""

    def __init__(self, name: str, argv: list[str], port: int, workdir: Path, env: dict | None = None):
        self.name, self.port = name, port
        self.log = workdir / f"{name}.log"
        with open(self.log, "wb") as log:
            self.popen = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU of every live process of this server's session (start_new_session:
        the supervisor or nginx master and all its workers), from /proc; 0 where /proc is missing."""
        return session_cpu_seconds(self.popen.pid)

    def wait_ready(self, path: str, headers: dict[str, str] | None = None, timeout: float = 20.0) -> None:
        """Poll until ``path`` answers 200; raise with the server's log otherwise."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                break
            try:
                req = urllib.request.Request(self.url + path, headers=headers or {})
                with urllib.request.urlopen(req, timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last = resp.status
            except urllib.error.HTTPError as exc:
                last = f"{exc.code} {exc.read()[:200]!r}"
            except OSError as exc:
                last = exc
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready on {self.url}{path}: {last}\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


NGINX_COMMON = """
worker_processes {workers};
pid {dir}/{name}.pid;
error_log {dir}/{name}.error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp-{name}-body;
  proxy_temp_path {dir}/tmp-{name}-proxy;
  fastcgi_temp_path {dir}/tmp-{name}-fcgi;
  uwsgi_temp_path {dir}/tmp-{name}-uwsgi;
  scgi_temp_path {dir}/tmp-{name}-scgi;
  keepalive_requests 1000000;
  {body}
}}
"""

UPSTREAM_BODY = """
  server {{
    listen 127.0.0.1:{port} reuseport;
    location = /api/customers {{ default_type application/json; alias {dir}/customers.json; }}
    location = /api/customers/1 {{ default_type application/json; alias {dir}/customer-1.json; }}
    # the large CSV export of bench/export.py (bench/export_data.py writes it; absent: 404)
    location = /api/customers/export.csv {{ default_type "text/csv; charset=utf-8"; alias {dir}/export.csv; }}
    location = /health {{ return 200 "ok"; }}
  }}
"""

PROXY_BODY = """
  upstream crm {{ server 127.0.0.1:{upstream_port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port} reuseport;
    location / {{
      proxy_pass http://crm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }}
  }}
"""


def start_nginx(name: str, workdir: Path, workers: int, body: str, upstream_port: int = 0) -> Proc:
    exe = find_nginx()
    if exe is None:
        raise RuntimeError("nginx is not installed (apt-get install -y nginx-light)")
    port = free_port()
    body = body.format(port=port, dir=workdir, upstream_port=upstream_port)
    conf = NGINX_COMMON.format(workers=workers, dir=workdir, name=name, body=body)
    (workdir / f"{name}.conf").write_text(conf)
    return Proc(name, [exe, "-c", str(workdir / f"{name}.conf"), "-p", str(workdir)], port, workdir)


def start_upstream(workdir: Path) -> Proc:
    (workdir / "customers.json").write_bytes(data.customer_list())
    (workdir / "customer-1.json").write_bytes(data.single_customer())
    workdir.chmod(0o755)  # nginx workers run as nobody when started by root
    proc = start_nginx("upstream", workdir, 1, UPSTREAM_BODY)
    proc.wait_ready("/api/customers/1")
    return proc


def start_nginx_proxy(workdir: Path, upstream: Proc, workers: int) -> Proc:
    proc = start_nginx("nginx-proxy", workdir, workers, PROXY_BODY, upstream.port)
    proc.wait_ready("/api/customers/1")
    return proc


def start_passthrough(workdir: Path, upstream: Proc, workers: int) -> Proc:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "bench.passthrough",
        "--port",
        str(port),
        "--upstream",
        upstream.url,
        "--workers",
        str(workers),
    ]
    proc = Proc("passthrough", argv, port, workdir, env={**os.environ, "PYTHONPATH": str(REPO)})
    proc.wait_ready("/api/customers/1")
    return proc


def start_redis(workdir: Path) -> Proc | None:
    exe = shutil.which("redis-server")
    if exe is None:
        return None
    port = free_port()
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    proc = Proc("redis", argv, port, workdir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start:\n{proc.log.read_text()[-1000:]}")


def signals_supported() -> bool:
    """True once the lead has added the ``signals:`` settings section (Redis counters on)."""
    from gateway.settings import Settings

    return "signals" in Settings.model_fields


def gateway_config(workdir: Path, port: int, upstream: Proc, redis: Proc | None, extra: dict | None) -> Path:
    from gateway.identity.devkeys import DEV_IDENTITY_CONFIG

    config: dict = {
        "listen": {"host": "127.0.0.1", "port": port},
        "upstream": {"url": upstream.url, "credential": {"value": f"Bearer {CRM_TOKEN}"}, "max_connections": 100},
        "rules_dir": str(REPO / "rules"),
        "reload_interval": 1.0,
        "audit": {"path": str(workdir / "audit.log"), "max_bytes": 1 << 30, "backups": 1},
        "identity": DEV_IDENTITY_CONFIG.model_dump(mode="json", exclude_defaults=True),
    }
    if redis is not None:
        config["redis_url"] = f"redis://127.0.0.1:{redis.port}/0"
        config["signals"] = {}
    for key, value in (extra or {}).items():
        config[key] = value
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start_gateway(
    workdir: Path, upstream: Proc, workers: int, token: str, redis: Proc | None, extra: dict | None = None
) -> Proc:
    port = free_port()
    config = gateway_config(workdir, port, upstream, redis, extra)
    argv = [sys.executable, "-m", "gateway.server", "--config", str(config), "--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = Proc("gateway", argv, port, workdir, env=env)
    proc.wait_ready("/api/customers/1", headers={"Authorization": f"Bearer {token}"})
    return proc


def session_cpu_seconds(session: int) -> float:
    """The CPU seconds (utime + stime) of the live processes whose session id is ``session``."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        fields = text[text.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session ...
        if len(fields) > 12 and int(fields[3]) == session:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
