"""Signals fixtures: stages on the test Redis (or in memory) with a collecting alert sink, the
gateway in front of the demo CRM with such a stage, and a Redis that refuses writes."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from democrm.app import create_app as create_crm
from gateway.app import create_app
from gateway.signals import SignalsConfig, build_signals
from tests.conftest import RULES, MutableClock, open_rules
from tests.integration.conftest import CRM_TOKEN, gateway_settings
from tests.signals.factories import T0, CollectingSink, load


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


@pytest.fixture
def signals_clock() -> MutableClock:
    return MutableClock(T0)


@pytest.fixture
async def make_stage(sink, signals_clock):
    """``await make_stage("redis", url, **config)`` -> a started SignalsStage, stopped at teardown."""
    stages = []

    async def factory(
        backend: str = "memory", redis_url: str | None = None, *, alerts=sink, clock=signals_clock, **config
    ):
        stage = build_signals(SignalsConfig(backend=backend, **config), redis_url=redis_url, alerts=alerts, clock=clock)
        await stage.start()
        stages.append(stage)
        return stage

    yield factory
    for stage in stages:
        await stage.stop()


@pytest.fixture
async def crm(aiohttp_server):
    return await aiohttp_server(create_crm(service_token=CRM_TOKEN))


@pytest.fixture
def anomaly_rules():
    rules, errors = load(RULES / "anomalies.yaml")
    assert rules is not None, errors
    return rules


@pytest.fixture
def gateway_with_signals(aiohttp_client, tmp_path, clock, crm, anomaly_rules):
    """``await gateway_with_signals(redis_url=..., name=...)`` -> (client, stage, sink)."""

    async def factory(redis_url: str | None, name: str = "gw", **config):
        settings = gateway_settings(str(crm.make_url("")).rstrip("/"), tmp_path / name, RULES)
        (tmp_path / name).mkdir(exist_ok=True)
        store = open_rules(RULES)
        sink = CollectingSink()
        stage = build_signals(
            SignalsConfig(backend="redis" if redis_url else "memory", **config),
            redis_url=redis_url,
            alerts=sink,
            clock=clock,
        )
        app = create_app(settings, store, clock=clock, signals=stage)
        assert store.current.anomalies is not None and anomaly_rules is not None
        return await aiohttp_client(app), stage, sink

    return factory


@pytest.fixture
async def admin(redis_url):
    """A plain client on the test Redis, for what the gateway must not do itself (FLUSHALL, CONFIG)."""
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


class FullRedis:
    """The shared test Redis at maxmemory with noeviction: every write is refused with OOM, while
    PING and reads still answer -- what a Redis that filled up looks like to the gateway."""

    def __init__(self, client, saved: dict):
        self.client, self.saved = client, saved

    async def fill(self) -> None:
        await self.client.config_set("maxmemory-policy", "noeviction")
        await self.client.config_set("maxmemory", "1")

    async def relieve(self) -> None:
        await self.client.config_set("maxmemory", self.saved["maxmemory"])
        await self.client.config_set("maxmemory-policy", self.saved["maxmemory-policy"])


@pytest.fixture
async def full_redis(redis_url):
    """The server is shared by the whole run: its maxmemory settings are restored whatever happens."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    saved = {**await client.config_get("maxmemory"), **await client.config_get("maxmemory-policy")}
    try:
        yield FullRedis(client, saved)
    finally:
        try:
            await FullRedis(client, saved).relieve()
        finally:
            await client.aclose()
