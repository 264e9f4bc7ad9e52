"""Redis killed mid-run: no crash, health degraded, fail modes hold, recovery when it returns.

The test runs its own redis-server on a free port (the shared one must stay up for other tests),
with an fsync'd append-only file like the shipped docker-compose, so a killed server comes back with
its data; ``persistent=False`` is the server that comes back empty (tests/signals/test_data_lost.py).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis

from gateway.errors import Unavailable
from gateway.metrics import Metrics
from gateway.model import Flow
from tests.conftest import RULES
from tests.policy.factories import make_ctx, make_identity
from tests.signals.factories import delete, later, load, record

pytestmark = pytest.mark.slow

FLOW = Flow(request_id="x")


class RedisProcess:
    def __init__(self, workdir, persistent: bool = True):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.workdir = workdir
        self.persistence = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *self.persistence,
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = aioredis.from_url(self.url)
        try:
            for _ in range(200):
                try:
                    await client.ping()
                    return
                except (aioredis.ConnectionError, OSError):
                    await asyncio.sleep(0.025)
            raise AssertionError("redis-server did not start")
        finally:
            await client.aclose()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
async def own_redis(tmp_path):
    server = RedisProcess(tmp_path)
    await server.start()
    yield server
    server.kill()


@pytest.fixture
def shipped():
    rules, errors = load(RULES / "anomalies.yaml")
    assert rules is not None, errors
    return SimpleNamespace(anomalies=rules)


async def test_redis_killed_mid_run_degrades_and_recovers(make_stage, own_redis, shipped, sink):
    stage = await make_stage(
        "redis",
        own_redis.url,
        reconnect_min=0.05,
        reconnect_max=0.2,
        fail_mode={"default": "open", "export": "closed", "customers.delete": "closed"},
    )
    metrics = Metrics()
    stage.attach_metrics(metrics)
    alice = make_identity("alice")
    stage.submit(FLOW, delete(n=25, when=later(0)), shipped)
    await stage.drain()
    assert stage.check(alice, make_ctx("customers.view")).reason == "anomaly-block"
    assert stage.health()["counted"] == 1 and not stage.health()["degraded"]

    own_redis.kill()
    stage.submit(FLOW, record(when=later(1)), shipped)
    stage.submit(FLOW, record(when=later(2)), shipped)
    await stage.drain()  # no crash: the batch is dropped and counted as such
    health = stage.health()
    assert (health["degraded"], health["connected"], health["dropped"], health["counted"]) == (True, False, 2, 1)
    assert health["last_error"]
    exposed = metrics.render().decode()
    assert "crmgw_redis_up 0.0" in exposed
    assert 'crmgw_signals_degraded_total{reason="redis-unavailable"} 2.0' in exposed

    bob = make_identity("bob")
    export_refusal = stage.check(bob, make_ctx("customers.export"))
    assert isinstance(export_refusal, Unavailable)
    assert (export_refusal.status, export_refusal.reason) == (503, "signals-unavailable")
    assert stage.check(bob, make_ctx("customers.delete")).reason == "signals-unavailable"
    assert stage.check(bob, make_ctx("customers.view")) is None  # reads fail open
    assert stage.check(alice, make_ctx("customers.view")).reason == "anomaly-block"  # local state holds

    await own_redis.start()
    for _ in range(200):  # the supervisor reconnects with backoff; probe() is the same step, now
        if await stage.probe():
            break
        await asyncio.sleep(0.025)
    assert stage.health()["degraded"] is False
    assert "crmgw_redis_up 1.0" in metrics.render().decode()
    assert stage.check(bob, make_ctx("customers.export")) is None
    stage.submit(FLOW, record("bob", when=later(3)), shipped)
    await stage.drain()
    assert stage.health()["counted"] == 2


async def test_start_with_redis_down_is_degraded_not_fatal(make_stage, own_redis):
    url = own_redis.url
    own_redis.kill()
    stage = await make_stage("redis", url, reconnect_min=0.05, reconnect_max=0.1)
    assert stage.health()["degraded"] is True
    assert stage.check(make_identity("alice"), make_ctx("customers.export")).reason == "signals-unavailable"
    await own_redis.start()
    for _ in range(200):  # the supervisor alone brings it back
        if not stage.health()["degraded"]:
            break
        await asyncio.sleep(0.025)
    assert stage.health()["degraded"] is False
