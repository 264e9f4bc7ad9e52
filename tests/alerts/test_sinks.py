"""Sinks: a webhook against a real, flaky aiohttp server; syslog over real UDP."""

from __future__ import annotations

import socket

import orjson
import pytest
from aiohttp import web

from gateway.alerts.config import SyslogConfig, WebhookConfig
from gateway.alerts.sinks import SyslogSink, WebhookSink
from tests.alerts.conftest import raise_kwargs

ALERT = {"id": "01TEST", "user": "alice", "type": "bulk-export", "level": "high", "score": 0.9, "summary": "s"}


@pytest.fixture
async def flaky(aiohttp_server):
    """A receiver that answers 503 to the first ``fail`` POSTs, then 204; records what it got."""
    state = {"fail": 0, "seen": []}

    async def hook(request: web.Request) -> web.Response:
        state["seen"].append((dict(request.headers), await request.read()))
        if len(state["seen"]) <= state["fail"]:
            return web.Response(status=503)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    state["url"] = str(server.make_url("/hook"))
    return state


class RecordedSleep:
    def __init__(self):
        self.delays = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def make_sink(url, sleep, **over):
    config = WebhookConfig(url=url, backoff=0.5, retries=over.pop("retries", 3), headers={"X-Token": "t"}, **over)
    sink = WebhookSink(config, sleep=sleep, jitter=lambda: 0.5)
    await sink.start()
    return sink


async def test_webhook_retries_until_the_receiver_accepts(flaky):
    flaky["fail"] = 2
    sleep = RecordedSleep()
    sink = await make_sink(flaky["url"], sleep)
    sink.submit("alert.raised", ALERT)
    await sink.drain()
    await sink.close()
    assert sink.delivered == 1 and sink.attempts == 3
    headers, body = flaky["seen"][-1]
    assert orjson.loads(body)["id"] == "01TEST"
    assert headers["X-Crmgw-Event"] == "alert.raised" and headers["X-Token"] == "t"
    assert sleep.delays == [0.5, 1.0]  # exponential (jitter pinned to its midpoint)


def test_backoff_is_capped_and_jittered():
    config = WebhookConfig(url="http://127.0.0.1:9/x", backoff=1, max_backoff=4)
    low = WebhookSink(config, jitter=lambda: 0.0)
    high = WebhookSink(config, jitter=lambda: 0.999)
    assert [low.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert high.delay(0) > 1.4 and high.delay(10) < 6.0


async def test_a_failed_delivery_is_kept_counted_and_retried_later(flaky):
    flaky["fail"] = 4
    sink = await make_sink(flaky["url"], RecordedSleep(), retries=1)
    sink.submit("alert.raised", ALERT)
    await sink.drain()
    assert sink.failed_deliveries == 1 and sink.health()["pending_retry"] == 1
    assert await sink.retry_failed() == 0  # attempts 3 and 4 fail too
    assert await sink.retry_failed() == 1
    assert sink.health()["pending_retry"] == 0 and sink.delivered == 1
    await sink.close()


async def test_a_full_queue_drops_and_counts_without_blocking(flaky):
    sink = WebhookSink(WebhookConfig(url=flaky["url"], queue_size=2))  # not started: nothing drains
    for _ in range(5):
        sink.submit("alert.raised", ALERT)
    assert sink.dropped == 3


async def test_store_sends_new_and_escalated_alerts_to_its_sinks(make_store, redis_url, flaky):
    sink = WebhookSink(WebhookConfig(url=flaky["url"]))
    store = await make_store(redis_url, sinks=[sink])
    await store.raise_alert(**raise_kwargs(level="medium"))
    await store.raise_alert(**raise_kwargs(level="medium"))  # a plain repeat: no new notification
    await store.raise_alert(**raise_kwargs(level="critical"))
    await sink.drain()
    events = [h["X-Crmgw-Event"] for h, _ in flaky["seen"]]
    assert events == ["alert.raised", "alert.escalated"]


async def test_syslog_sends_one_datagram_per_alert():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        sink = SyslogSink(SyslogConfig(address=f"127.0.0.1:{port}", facility="local3"))
        sink.submit("alert.raised", ALERT)
        data = receiver.recv(65535).decode()
        await sink.close()
    # <PRI> = facility local3 (19) * 8 + error (3, level "high")
    assert data.startswith("<155>crmgw-alert ") and '"user":"alice"' in data
