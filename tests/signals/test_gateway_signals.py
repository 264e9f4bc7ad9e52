"""Through the real gateway in front of the demo CRM, with a SignalsStage on the real Redis.

The fixture (``gateway_with_signals``, tests/signals/conftest.py) builds the stage itself (to hold a
collecting alert sink) and hands it to the gateway, whose lifecycle starts and stops it; the anomaly
rules come from the shipped rule set.
"""

from __future__ import annotations

import socket

from gateway.signals.enforcement import Measure
from tests.integration.conftest import auth


async def test_bulk_export_raises_a_high_alert_on_the_first_export_over_the_threshold(gateway_with_signals, redis_url):
    client, stage, sink = await gateway_with_signals(redis_url)
    resp = await client.get("/api/customers/export.csv", headers=auth("grace", mfa=True))
    assert resp.status == 200
    await resp.read()
    await stage.drain()
    assert sink.alerts == []
    resp = await client.get("/api/customers/export.csv", headers=auth("grace", mfa=True))
    assert resp.status == 200
    await resp.read()
    await stage.drain()
    (alert,) = sink.alerts
    assert (alert["user"], alert["rule"], alert["level"]) == ("grace", "bulk-export", "high")
    assert alert["evidence"]["value"] == 600
    assert len(alert["evidence"]["recent_requests"]) == 2


async def test_mass_delete_blocks_the_next_export_with_anomaly_block(gateway_with_signals, redis_url):
    client, stage, sink = await gateway_with_signals(redis_url)
    resp = await client.post("/api/customers/bulk-delete", json={"ids": list(range(1, 26))}, headers=auth("grace"))
    assert resp.status == 200, await resp.text()
    await stage.drain()
    assert sink.rules() == ["mass-delete"]
    resp = await client.get("/api/customers/export.csv", headers=auth("grace", mfa=True))
    body = await resp.json()
    assert resp.status == 403
    assert (body["reason"], body["rule"]) == ("anomaly-block", "mass-delete")


async def test_two_gateways_sharing_redis_count_together_and_share_the_block(gateway_with_signals, redis_url):
    (one, stage1, sink1), (two, stage2, sink2) = [await gateway_with_signals(redis_url, name=n) for n in ("one", "two")]
    resp = await one.post("/api/customers/bulk-delete", json={"ids": list(range(1, 13))}, headers=auth("grace"))
    assert resp.status == 200
    await stage1.drain()
    resp = await two.post("/api/customers/bulk-delete", json={"ids": list(range(13, 25))}, headers=auth("grace"))
    assert resp.status == 200
    await stage2.drain()
    assert sink1.alerts == [] and sink2.rules() == ["mass-delete"]  # 12 + 12 > 20 only together
    assert sink2.alerts[0]["evidence"]["value"] == 24
    resp = await two.get("/api/customers/1", headers=auth("grace"))
    assert resp.status == 403


async def test_step_up_answers_401_until_an_mfa_token(gateway_with_signals, redis_url, clock):
    client, stage, _ = await gateway_with_signals(redis_url)
    await stage.enforcement.impose(Measure("grace", "step_up", "new-country-off-hours", clock().timestamp() + 600))
    resp = await client.get("/api/customers/1", headers=auth("grace"))
    body = await resp.json()
    assert resp.status == 401
    assert (body["reason"], body["rule"]) == ("step-up-required", "new-country-off-hours")
    assert 'error="step-up-required"' in resp.headers["WWW-Authenticate"]
    resp = await client.get("/api/customers/1", headers=auth("grace", mfa=True))
    assert resp.status == 200


async def test_redis_down_exports_fail_closed_and_reads_continue(gateway_with_signals):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client, stage, _ = await gateway_with_signals(f"redis://127.0.0.1:{port}/0", reconnect_min=5)
    resp = await client.get("/api/customers/export.csv", headers=auth("grace", mfa=True))
    body = await resp.json()
    assert (resp.status, body["reason"]) == (503, "signals-unavailable")
    resp = await client.get("/api/customers/1", headers=auth("grace"))
    assert resp.status == 200
    await stage.drain()
    assert stage.health()["degraded"] and stage.health()["dropped"] == 2
