"""The request timeout and the audit line agree: a timeout that expires while a decided answer waits
for its audit line's append (gateway.pipeline, write_soon) no longer turns it into a 504 the line
does not record; a request the timeout did end has its 504 line in the file before the 504 is sent."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.model import Flow
from gateway.ruleset import RuleSet
from gateway.services import Idle
from tests.conftest import RULES, open_rules
from tests.integration.conftest import auth, gateway_settings

TIMEOUT = 0.3


class LoopStaller(Idle):
    """A scorer that blocks the event loop past the request timeout once, while the answer to
    ``/api/customers/1`` waits for its queued audit line: the timer and that line's append then fall
    due in the same loop pass, the window the pipeline must close."""

    def __init__(self) -> None:
        self.stalled = False

    def submit(self, flow: Flow, record: dict[str, Any], ruleset: RuleSet) -> None:
        if record["path"] == "/api/customers/1" and not self.stalled:
            self.stalled = True
            time.sleep(TIMEOUT * 1.5)


def crm_holding_customer_2(arrived: asyncio.Event) -> web.Application:
    """Customer 1 at once; customer 2 never (it keeps a second request in flight)."""

    async def customer(request: web.Request) -> web.Response:
        if request.match_info["id"] == "2":
            arrived.set()
            await asyncio.sleep(60)
        return web.json_response({"id": int(request.match_info["id"]), "name": "x", "owner_id": "frank"})

    app = web.Application()
    app.router.add_get("/api/customers/{id}", customer)
    return app


def lines(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    return {line["request_id"]: line for line in map(json.loads, path.read_text().splitlines())}


@pytest.mark.slow
async def test_a_timeout_during_the_audit_wait_does_not_change_the_answer(aiohttp_server, aiohttp_client, tmp_path):
    arrived = asyncio.Event()
    crm = await aiohttp_server(crm_holding_customer_2(arrived))
    settings = gateway_settings(str(crm.make_url("")).rstrip("/"), tmp_path, RULES)
    scorer = LoopStaller()
    gw = await aiohttp_client(create_app(settings, open_rules(RULES), scorer=scorer, request_timeout=TIMEOUT))
    audit = tmp_path / "audit.log"
    answers: dict[str, tuple[int, dict[str, Any] | None]] = {}

    async def call(i: int) -> None:
        async with gw.get(f"/api/customers/{i}", headers=auth("frank")) as r:
            request_id = r.headers["X-Request-Id"]
            answers[request_id] = (r.status, lines(audit).get(request_id))  # the line as the client is answered

    held = asyncio.create_task(call(2))  # in flight, so customer 1's line is queued for the tick's append
    await asyncio.wait_for(arrived.wait(), 5)
    await call(1)
    await asyncio.wait_for(held, 5)
    assert scorer.stalled
    assert len(answers) == 2
    for status, line in answers.values():
        assert line is not None, "the line is in the file before the answer is sent"
        assert line["status"] == status
    assert sorted(status for status, _ in answers.values()) == [200, 504]  # customer 1 answered, 2 timed out
