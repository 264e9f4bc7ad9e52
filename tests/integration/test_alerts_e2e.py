"""Issue 3 end to end with the gateway's own wiring: real Redis counters, the real alert store.

Traffic through the gateway raises alerts; they are listed by the admin API, survive a gateway
restart and a Redis flush, and an analyst's false-positive verdict reaches the verdicts file that
the next training run reads (detectors.train.load_inputs).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from detectors.train import load_inputs
from gateway.alerts.verdicts import write_verdicts
from gateway.app import GATEWAY
from tests.integration.conftest import auth


async def open_gateway(make_gateway, crm, redis_url):
    gw = await make_gateway(crm, redis_url=redis_url)
    return gw, gw.server.app[GATEWAY]


async def alerts(gw, **query):
    resp = await gw.get("/_gw/api/alerts", params=query, headers=auth("heidi"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return body["alerts"] if isinstance(body, dict) else body


async def test_traffic_raises_alerts_that_survive_restarts_and_feed_training(make_gateway, crm, redis_url, tmp_path):
    gw, gateway = await open_gateway(make_gateway, crm, redis_url)
    assert gateway.signals.health()["backend"] == "redis"
    # bulk export: 300 rows per export; the second crosses the 500-row threshold
    for _ in range(2):
        resp = await gw.get("/api/customers/export.csv", headers=auth("grace", mfa=True))
        assert resp.status == 200
        await resp.read()
    # enumeration: an admin walks customer ids one by one
    for i in range(1, 30):
        await (await gw.get(f"/api/customers/{i}", headers=auth("grace"))).read()
    await gateway.signals.drain()
    listed = await alerts(gw)
    types = {a["type"]: a for a in listed}
    assert types["bulk-export"]["level"] == "high" and types["bulk-export"]["user"] == "grace"
    assert types["enumeration-sequential"]["user"] == "grace"
    # mass delete: 25 records at once -> critical, and the next export is blocked
    resp = await gw.post("/api/customers/bulk-delete", json={"ids": list(range(100, 125))}, headers=auth("grace"))
    assert resp.status == 200
    await gateway.signals.drain()
    resp = await gw.get("/api/customers/export.csv", headers=auth("grace", mfa=True))
    assert resp.status == 403 and (await resp.json())["reason"] == "anomaly-block"
    before = {a["id"] for a in await alerts(gw)}
    assert len(before) >= 3
    await gw.close()

    # a restarted gateway (same journal, same Redis) sees the same alerts
    gw, gateway = await open_gateway(make_gateway, crm, redis_url)
    assert {a["id"] for a in await alerts(gw)} == before
    await gw.close()

    # Redis loses everything: the journal brings the alerts back
    client = aioredis.from_url(redis_url)
    await client.flushall()
    await client.aclose()
    gw, gateway = await open_gateway(make_gateway, crm, redis_url)
    assert {a["id"] for a in await alerts(gw)} == before

    # an analyst marks the bulk export false positive: API shows it, the verdicts file carries it
    alert_id = next(a["id"] for a in await alerts(gw) if a["type"] == "bulk-export")
    resp = await gw.post(
        f"/_gw/api/alerts/{alert_id}/false-positive", json={"note": "quarterly audit export"}, headers=auth("heidi")
    )
    assert resp.status == 200, await resp.text()
    shown = await (await gw.get(f"/_gw/api/alerts/{alert_id}", headers=auth("heidi"))).json()
    shown = shown.get("alert", shown)
    assert shown["status"] == "false_positive" and shown["notes"][-1]["text"] == "quarterly audit export"
    out = tmp_path / "verdicts.jsonl"
    assert write_verdicts(gateway.alerts.journal.path, out) >= 1
    _, verdicts = load_inputs(None, out)
    assert any(v.user == "grace" and v.verdict == "false_positive" for v in verdicts)
