"""The request path's audit lines: appended together when requests finish in the same loop tick,
and each in the file by the time its answer reaches the client (gateway.pipeline + write_soon)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web

from gateway.app import GATEWAY
from tests.integration.conftest import auth, make_gateway  # noqa: F401  (make_gateway: a fixture)

CALLERS = 8


def held_crm(arrived: list[str], release: asyncio.Event) -> web.Application:
    """A CRM stand-in that answers no read until ``CALLERS`` of them arrived, then all at once."""

    async def customer(request: web.Request) -> web.Response:
        arrived.append(request.match_info["id"])
        if len(arrived) >= CALLERS:
            release.set()
        await release.wait()
        return web.json_response({"id": int(request.match_info["id"]), "name": "x", "owner_id": "frank"})

    app = web.Application()
    app.router.add_get("/api/customers/{id}", customer)
    return app


def ids_in(path: Path) -> set[str]:
    return {json.loads(line)["request_id"] for line in path.read_text().splitlines()} if path.exists() else set()


async def test_requests_finishing_together_share_appends_and_each_line_precedes_its_answer(
    aiohttp_server, make_gateway, tmp_path
):
    arrived: list[str] = []
    crm = await aiohttp_server(held_crm(arrived, asyncio.Event()))
    gw = await make_gateway(crm)
    audit = gw.app[GATEWAY].audit
    seen_at_answer: list[bool] = []

    async def call(i: int) -> None:
        async with gw.get(f"/api/customers/{i + 1}", headers=auth("frank")) as r:
            assert r.status == 200
            seen_at_answer.append(r.headers["X-Request-Id"] in ids_in(tmp_path / "audit.log"))

    await asyncio.gather(*(call(i) for i in range(CALLERS)))
    assert seen_at_answer == [True] * CALLERS
    assert audit.written == CALLERS
    assert audit.appends < CALLERS  # at least two lines went out in one append


async def test_a_request_alone_in_flight_is_written_at_once(aiohttp_server, make_gateway, tmp_path):
    arrived: list[str] = []
    release = asyncio.Event()
    release.set()
    crm = await aiohttp_server(held_crm(arrived, release))
    gw = await make_gateway(crm)
    audit = gw.app[GATEWAY].audit
    for i in range(3):
        async with gw.get(f"/api/customers/{i + 1}", headers=auth("frank")) as r:
            assert r.status == 200
            assert r.headers["X-Request-Id"] in ids_in(tmp_path / "audit.log")
    assert (audit.written, audit.appends) == (3, 3)
