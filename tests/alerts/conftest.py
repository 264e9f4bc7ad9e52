"""Alert-store fixtures: stores on a real Redis, and a private redis-server that tests may stop."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis as redis_sync
from aiohttp import web

from gateway.alerts.api import register_alert_routes
from gateway.alerts.config import AlertsConfig
from gateway.alerts.journal import Journal
from gateway.alerts.store import AlertStore
from gateway.app import GATEWAY, create_app
from gateway.errors import Forbidden, Unauthenticated
from gateway.model import Identity, User
from gateway.redisconn import connect_redis
from gateway.rulestore import RuleStore
from tests.conftest import RULES
from tests.integration.conftest import gateway_settings


def raise_kwargs(**over):
    base = {
        "user": "alice",
        "type": "bulk-export",
        "level": "high",
        "score": 0.9,
        "summary": "alice exported 5000 rows",
        "evidence": {"records_exported": 5000, "baseline": 120},
        "rule": "bulk-export",
        "window": "2026-03-03",
    }
    base.update(over)
    return base


@pytest.fixture
async def make_store(tmp_path):
    """make_store(redis_url=None, journal=None, writer="w1", **kw) -> a started AlertStore (closed at teardown)."""
    stores = []

    async def make(redis_url=None, journal: Path | None = None, writer="w1", **kw):
        store = AlertStore(
            Journal(journal or tmp_path / "alerts.jsonl"),
            redis=connect_redis(redis_url) if redis_url else None,
            writer=writer,
            **kw,
        )
        await store.start(background=False)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


class RedisProcess:
    """A redis-server this test owns, on a fixed port, that can be stopped and started again (empty)."""

    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="crmgw-alerts-redis-")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis_sync.Redis(port=self.port)
        try:
            for _ in range(200):
                try:
                    client.ping()
                    return
                except redis_sync.ConnectionError:
                    time.sleep(0.02)
            raise RuntimeError("redis-server did not start")
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis_proc():
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run the tests with ./run test")
    server = RedisProcess()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


ANALYSTS = frozenset({"security_analyst", "admin"})
ROLES = {"heidi": {"security_analyst"}, "grace": {"admin"}, "alice": {"sales_rep"}}
JSON = {"Content-Type": "application/json"}


def authorize(request: web.Request) -> Identity:
    """Stands in for Gateway.authenticate_admin: 401 without a user, 403 without an analyst role."""
    user = request.headers.get("X-Test-User")
    if user not in ROLES:
        raise Unauthenticated("credential-missing")
    if not ROLES[user] & ANALYSTS:
        raise Forbidden("role-unauthorized")
    return Identity(user=User(id=user, effective_roles=frozenset(ROLES[user])), method="trusted_header")


def as_user(user):
    return {"X-Test-User": user}


@pytest.fixture
async def api(aiohttp_client, make_store, redis_url):
    store = await make_store(redis_url)
    app = web.Application()
    register_alert_routes(app, prefix="/_gw", store_getter=lambda: store, authorize=authorize)
    client = await aiohttp_client(app)
    client.store = store
    return client


@pytest.fixture
async def console_api(aiohttp_client, make_store, redis_url, tmp_path):
    """The alerts API authorised by the real gateway's admin authentication (Bearer tokens)."""
    rules, errors = RuleStore.open(RULES)
    assert rules is not None, errors
    gw = create_app(gateway_settings("http://127.0.0.1:9", tmp_path, RULES), rules)[GATEWAY]
    store = await make_store(redis_url)
    roles = frozenset(AlertsConfig().api_roles)
    app = web.Application()
    register_alert_routes(
        app, prefix="/_gw", store_getter=lambda: store, authorize=lambda req: gw.authenticate_admin(req, roles)
    )
    client = await aiohttp_client(app)
    client.store = store
    yield client
    gw.audit.close()
