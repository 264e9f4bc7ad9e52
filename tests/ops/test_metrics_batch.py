"""The request metrics are tallied per request and flushed in batches (gateway.metrics, issue 14):
the same figures as one increment per request, and every answered request already in the
multi-process files another worker's /metrics reads."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest, multiprocess, values

from gateway.app import create_app
from gateway.metrics import MULTIPROC_ENV, Metrics
from gateway.model import Flow
from tests.conftest import RULES, open_rules
from tests.integration.conftest import auth, gateway_settings

LATENCIES = [0.0004, 0.0004, 0.0011, 0.003, 0.0007, 0.2, 12.5, 45.0, 0.0011, 1e-05, 0.0099]
LABELS = [("customers.view", "allow", "200"), ("customers.view", "deny", "403"), ("customers.view", "allow", "200")]


def without_created(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if "_created" not in line]


def test_a_batch_gives_the_same_figures_as_one_increment_per_request():
    batched, reference = Metrics(), Metrics()
    for i, seconds in enumerate(LATENCIES):
        operation, effect, status = LABELS[i % len(LABELS)]
        flow = Flow(request_id=f"{i:016x}")
        flow.started -= seconds  # elapsed_ms() is then (at least) ``seconds``
        record = {"operation": operation, "effect": effect, "status": int(status)}
        batched.observe(flow, record)
        elapsed = flow.elapsed_ms() / 1000.0
        reference.requests.labels(operation, effect, status).inc()
        reference.latency.labels(operation).observe(elapsed)
        batched._latency_pending[operation][-1] = elapsed  # the very value the reference observed
        if i in (4, 9):
            batched.flush()  # several ticks, with a histogram sum carried across them
    assert without_created(batched.render()) == without_created(reference.render())
    assert 'crmgw_requests_total{effect="allow",operation="customers.view",status="200"} 7.0' in (
        batched.render().decode()
    )


def answered_count(directory: str) -> float:
    """crmgw_requests_total of customers.view as another worker's /metrics reads the files now."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("crmgw_requests_total{") and 'operation="customers.view"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_every_answered_request_is_in_the_files_when_its_answer_arrives(
    aiohttp_server, aiohttp_client, tmp_path, monkeypatch
):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)  # restored for the other tests
    callers, release, last = 8, asyncio.Event(), asyncio.Event()
    arrived: list[str] = []

    async def customer(request: web.Request) -> web.Response:
        if request.match_info["id"] == "99":
            await last.wait()  # still in flight: none of the others is written (nor counted) alone
        arrived.append(request.match_info["id"])
        if len(arrived) >= callers:
            release.set()
        await release.wait()  # all answered in the same loop tick: their lines and counts batched
        return web.json_response({"id": int(request.match_info["id"]), "name": "x", "owner_id": "frank"})

    crm_app = web.Application()
    crm_app.router.add_get("/api/customers/{id}", customer)
    crm = await aiohttp_server(crm_app)
    settings = gateway_settings(str(crm.make_url("")).rstrip("/"), tmp_path, RULES)
    gw = await aiohttp_client(create_app(settings, open_rules(RULES)))
    counted_at_answer: list[float] = []

    async def call(i: int) -> None:
        async with gw.get(f"/api/customers/{i + 1}", headers=auth("frank")) as r:
            assert r.status == 200
            counted_at_answer.append(answered_count(str(directory)))

    held = asyncio.create_task(call(98))
    await asyncio.gather(*(call(i) for i in range(callers)))
    assert len(counted_at_answer) == callers
    assert all(count >= n for n, count in enumerate(counted_at_answer, 1)), counted_at_answer
    last.set()
    await held
    assert answered_count(str(directory)) == callers + 1
