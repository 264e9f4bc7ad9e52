"""Issue 3 acceptance 6 through the gateway's own wiring: Redis killed mid-run and restarted.

No crash; /_gw/health and /metrics say degraded; exports fail closed while reads continue; once
Redis is back the gateway recovers by itself and alerts raised during the outage are not lost.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.app import GATEWAY
from tests.integration.conftest import auth
from tests.signals.test_redis_outage import RedisProcess

pytestmark = pytest.mark.slow


async def wait_until(predicate, timeout=10.0):
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_redis_killed_mid_run_then_restarted(make_gateway, crm, tmp_path):
    redis = RedisProcess(tmp_path)
    await redis.start()
    try:
        gw = await make_gateway(crm, redis_url=redis.url, signals={"reconnect_min": 0.05, "reconnect_max": 0.2})
        gateway = gw.server.app[GATEWAY]
        assert (await gw.get("/api/customers/export.csv", headers=auth("grace", mfa=True))).status == 200

        redis.kill()
        resp = await gw.get("/api/customers/1", headers=auth("grace"))  # reads continue ...
        assert resp.status == 200
        await gateway.signals.drain()

        async def degraded():
            health = await (await gw.get("/_gw/health")).json()
            return "signals-redis-unavailable" in health["degraded"]

        assert await wait_until(degraded)
        resp = await gw.get("/api/customers/export.csv", headers=auth("grace", mfa=True))  # ... exports do not
        assert resp.status == 503 and (await resp.json())["reason"] == "signals-unavailable"
        # an alert raised while Redis is down is journaled, not lost
        alert_id = await gateway.alerts.raise_alert(
            user="grace",
            type="manual-check",
            level="low",
            score=1.0,
            summary="raised during the outage",
            evidence={},
            rule="manual-check",
            window="1h",
        )
        assert alert_id
        metrics = await (await gw.get("/metrics")).text()
        assert "crmgw_redis_up 0.0" in metrics

        await redis.start()

        async def recovered():
            health = await (await gw.get("/_gw/health")).json()
            return "signals-redis-unavailable" not in health["degraded"] and health["status"] == "ok"

        assert await wait_until(recovered, timeout=15)
        assert (await gw.get("/api/customers/export.csv", headers=auth("grace", mfa=True))).status == 200
        resp = await gw.get(f"/_gw/api/alerts/{alert_id}", headers=auth("heidi"))
        assert resp.status == 200
    finally:
        redis.kill()
