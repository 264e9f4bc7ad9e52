"""Concurrent streamed exports of one user share one row budget: rows are reserved in Redis (or in the
process, memory backend) before they go out (gateway.signals.reservations, gateway.response.stream)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from gateway.signals import reservations
from tests.integration.conftest import audit_lines, auth
from tests.integration.test_stream_exports import EXPORT, export_body, parse, scoped_rules

KEY = reservations.reservation_key("alice", "test-export-block")  # crmgw:{u:alice}:resv:test-export-block
ALLOWED = 401  # test-export-block: gt 400, the crossing row included


def gated_app(parts: list[bytes], gates: list[asyncio.Event]) -> web.Application:
    """A CRM stand-in that sends ``parts[i]`` (in small pieces) once ``gates[i]`` is set."""

    async def export(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8"})
        await resp.prepare(request)
        try:
            for part, gate in zip(parts, gates):
                await gate.wait()
                for i in range(0, len(part), 997):
                    await resp.write(part[i : i + 997])
            await resp.write_eof()
        except ConnectionError:
            pass  # the gateway stopped reading (a cut export)
        return resp

    app = web.Application()
    app.router.add_get(EXPORT, export)
    return app


async def fetch(gw: object) -> tuple[int, bool]:
    """(rows received, whether the body stopped short) of one export of alice's."""
    resp = await gw.get(EXPORT, headers=auth("alice"))  # type: ignore[attr-defined]
    assert resp.status == 200
    received, cut = b"", False
    try:
        async for chunk in resp.content.iter_any():
            received += chunk
    except aiohttp.ClientPayloadError:
        cut = True
    return len(parse(received.decode())), cut


@pytest.mark.parametrize("backend", ["redis", "memory"])
async def test_two_concurrent_exports_together_stay_within_the_threshold(
    aiohttp_server, make_gateway, tmp_path, redis_url, backend
):
    both_started = asyncio.Event()
    arrived = 0

    async def export(req: web.Request) -> web.StreamResponse:
        nonlocal arrived
        resp = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8"})
        await resp.prepare(req)
        arrived += 1
        if arrived == 2:
            both_started.set()
        await both_started.wait()  # both streams have their budget before either sends a row
        body = export_body(1200)  # 300 of alice's rows each: 600 together, over the 401 allowed
        try:
            for i in range(0, len(body), 997):
                await resp.write(body[i : i + 997])
                await asyncio.sleep(0)
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    app = web.Application()
    app.router.add_get(EXPORT, export)
    crm = await aiohttp_server(app)
    extra = {"redis_url": redis_url} if backend == "redis" else {}
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path, block=True), **extra)

    (rows_a, cut_a), (rows_b, cut_b) = await asyncio.gather(fetch(gw), fetch(gw))

    assert rows_a + rows_b <= ALLOWED  # without reservations: 300 + 300
    assert sorted([cut_a, cut_b]) == [False, True]  # one got the reservation, the other is cut
    cut_lines = [line for line in audit_lines(tmp_path) if line.get("signals", {}).get("stream")]
    assert [line["signals"]["stream"]["cut"] for line in cut_lines] == ["row-budget"]
    assert cut_lines[0]["records_returned"] == min(rows_a, rows_b)


async def test_a_stream_ending_early_releases_its_reservation(aiohttp_server, make_gateway, tmp_path, redis_url):
    first, rest = export_body(200), b"201,too,few,cells\r\n"  # 50 of alice's rows, then a row it cannot filter
    gates = [asyncio.Event(), asyncio.Event()]
    gates[0].set()
    crm = await aiohttp_server(gated_app([first, rest], gates))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path, block=True), redis_url=redis_url)
    client = aioredis.from_url(redis_url)
    try:
        resp = await gw.get(EXPORT, headers=auth("alice"))
        assert resp.status == 200
        received = b""
        while len(parse(received.decode())) < 50:  # every row of the first part is out
            received += await resp.content.readany()
        held = int(await client.get(KEY) or 0)
        assert 50 <= held <= ALLOWED and await client.ttl(KEY) > 0  # reserved before they went out
        gates[1].set()  # the bad row: the stream is cut ("unenforceable")
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in resp.content.iter_any():
                received += chunk
        assert audit_lines(tmp_path)[-1]["signals"]["stream"]["cut"] == "unenforceable"
        assert await client.exists(KEY) == 0  # given back, not left to the TTL
    finally:
        await client.aclose()


@pytest.mark.slow  # waits for a reservation to expire
async def test_a_killed_gateways_reservation_expires(aiohttp_server, make_gateway, tmp_path, redis_url, monkeypatch):
    monkeypatch.setattr(reservations, "TTL_SECONDS", 1)
    gates = [asyncio.Event()]
    gates[0].set()
    crm = await aiohttp_server(gated_app([export_body(1200)], gates))
    gw = await make_gateway(crm, rules=scoped_rules(tmp_path, block=True), redis_url=redis_url)
    client = aioredis.from_url(redis_url)
    try:
        # What a gateway killed mid-export leaves: its rows reserved, never given back.
        dead = reservations.RedisReservations(client)
        assert await dead.reserve(KEY, 1000, ALLOWED) == ALLOWED
        assert await fetch(gw) == (0, True)  # nothing left while it holds them
        await asyncio.sleep(1.2)
        assert await client.exists(KEY) == 0
        assert await fetch(gw) == (300, False)  # expired: the whole budget again
    finally:
        await client.aclose()
