"""Issue 12: one gateway process, one Redis client and one view of "is Redis taking writes" per URL.

Each test runs its own redis-server (tests/signals/test_redis_outage.py's RedisProcess) so that it
can stop it, fill it and read its CLIENT LIST without disturbing the shared test Redis.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.access import open_access_store
from gateway.alerts import AlertsConfig, open_alert_store
from gateway.app import GATEWAY
from gateway.approvals import open_approval_store
from gateway.approvals.model import ApprovalError
from gateway.approvals.store import ApprovalsUnavailable
from gateway.redisconn import RedisConnections
from gateway.signals import SignalsConfig, build_signals
from tests.alerts.conftest import raise_kwargs
from tests.conftest import RULES
from tests.integration.conftest import auth, gateway_settings
from tests.signals.test_redis_outage import RedisProcess

pytestmark = pytest.mark.slow


async def gone(admin, name: str) -> bool:
    """No connection named ``name`` is left (the server notices closed sockets within a moment)."""
    for _ in range(100):
        if not [c for c in await admin.client_list() if c["name"] == name]:
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.fixture
async def own_redis(tmp_path):
    (tmp_path / "redis").mkdir()
    server = RedisProcess(tmp_path / "redis")
    await server.start()
    yield server
    server.kill()


@pytest.fixture
async def admin(own_redis):
    client = aioredis.from_url(own_redis.url, client_name="test-admin")
    yield client
    await client.aclose()


@pytest.fixture
async def parts(own_redis, tmp_path):
    """The alert store, the approval store and a signals stage (not started: no background writes)
    on one RedisConnections, as the gateway's lifecycle opens them."""
    redis = RedisConnections()
    settings = gateway_settings("http://127.0.0.1:9", tmp_path, RULES, redis_url=own_redis.url)
    alerts = await open_alert_store(
        AlertsConfig(), redis_url=own_redis.url, base_dir=tmp_path, background=False, with_sinks=False, redis=redis
    )
    approvals = await open_approval_store(settings, background=False, redis=redis)
    stage = build_signals(SignalsConfig(backend="redis"), redis_url=own_redis.url, alerts=None, redis=redis)
    yield redis, alerts, approvals, stage
    await approvals.close()
    await alerts.close()
    await redis.close()


async def test_the_gateway_opens_one_client_per_url_for_signals_alerts_approvals_and_access(
    make_gateway, crm, own_redis, admin
):
    gw = await make_gateway(crm, redis_url=own_redis.url)
    services = gw.server.app[GATEWAY]
    assert (await gw.get("/api/customers/1", headers=auth("grace"))).status == 200
    await services.signals.drain()

    (client,) = services.redis.clients.values()
    assert services.signals.client is client
    assert services.alerts._redis is client and services.approvals._redis is client and services.access._redis is client
    tracker = services.redis.health(own_redis.url)
    assert services.signals.link is tracker
    assert services.alerts.redis_health is tracker
    assert services.approvals.redis_health is tracker and services.access.redis_health is tracker
    # every connection to this Redis but the test's own comes from that client (only it names them)
    others = [c for c in await admin.client_list() if c["name"] != "test-admin"]
    assert others and {c["name"] for c in others} == {"crmgw"}
    health = await (await gw.get("/_gw/health")).json()
    assert health["status"] == "ok" and health["signals"]["state"] == "ok" and health["alerts"]["redis"] == "ok"

    await gw.close()  # the lifecycle stops every part, then closes the client once
    assert services.redis.clients == {}
    assert await gone(admin, "crmgw")


async def test_a_stopped_redis_is_unreachable_for_every_part_until_a_write_succeeds(parts, own_redis):
    redis, alerts, approvals, stage = parts
    tracker = redis.health(own_redis.url)
    assert tracker.ok and alerts.redis_up and approvals.redis_up  # the stores' journal markers were writes
    client = redis.client(own_redis.url)

    own_redis.kill()
    assert await alerts.check_redis() is False  # seen by the alert store ...
    assert (tracker.state, tracker.connected) == ("unreachable", False)
    assert stage.health()["problems"] == ["signals-redis-unavailable"]  # ... and by the signals stage
    assert stage.health()["last_error"] and not approvals.redis_up
    assert await alerts.raise_alert(**raise_kwargs())  # alerts keep being accepted (journal)

    await own_redis.start()
    assert await client.ping() is True
    assert tracker.state == "unreachable"  # answering a PING is no proof: nothing was written yet
    assert stage.health()["degraded"] is True and alerts.health()["degraded"] == ["alerts-redis-unavailable"]
    assert await approvals.check_redis() is True  # its replay and journal marker are writes
    assert tracker.ok  # Redis takes writes again; counting is vouched for by the signals' own write only
    assert await stage.probe() is True and stage.health()["problems"] == []
    # the alert store was not synced since the outage: it is up once it replayed its journal
    assert not alerts.redis_up
    assert await alerts.check_redis() is True and alerts.health()["degraded"] == []


async def test_a_refusal_seen_by_one_store_is_seen_by_all_and_each_keeps_its_behaviour(parts, own_redis, admin):
    redis, alerts, approvals, stage = parts
    await admin.config_set("maxmemory-policy", "noeviction")
    await admin.config_set("maxmemory", "1")  # every write refused (OOM), PING and reads answered

    assert await alerts.raise_alert(**raise_kwargs()) is not None  # alerts: accepted, journalled
    tracker = redis.health(own_redis.url)
    assert (tracker.state, tracker.connected) == ("refusing-writes", True)
    assert "OutOfMemoryError" in (tracker.last_error or "")
    assert stage.health()["problems"] == ["signals-redis-refusing-writes"]
    assert alerts.health()["degraded"] == ["alerts-redis-unavailable"]
    with pytest.raises(ApprovalsUnavailable):  # approvals: refused rather than risk a second use
        await approvals.decide("ap-unknown", approve=True, actor="bob", note=None, directory=None)
    with pytest.raises(RedisError):
        await redis.client(own_redis.url).set("still", "refused")

    await admin.config_set("maxmemory", "0")
    with pytest.raises(ApprovalError):  # Redis takes the approvals' marker again: the unknown id is told
        await approvals.decide("ap-unknown", approve=True, actor="bob", note=None, directory=None)
    assert tracker.ok  # Redis takes writes again; counting is vouched for by the signals' own write only
    assert await stage.probe() is True and stage.health()["problems"] == []
    assert await alerts.check_redis() is True and alerts.health()["status"] == "ok"


async def test_a_store_given_the_process_client_leaves_it_open(own_redis, tmp_path):
    redis = RedisConnections()
    settings = gateway_settings("http://127.0.0.1:9", tmp_path, RULES, redis_url=own_redis.url)
    access = await open_access_store(settings, background=False, redis=redis)
    await access.close()
    assert await redis.client(own_redis.url).ping() is True  # still open: the manager closes it
    await redis.close()
