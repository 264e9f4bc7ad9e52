"""The docker-compose topology, run as local processes (Docker is not available here).

    client -> entry (round-robin) -> gateway replica 1 ┐-> demo CRM (process)
                                  -> gateway replica 2 ┘-> one redis-server (shared)

and docker-compose.yml's structure: services, read-only rules mount, healthchecks.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys

import aiohttp
import pytest
import yaml
from aiohttp import web

from gateway.identity.devkeys import mint_token
from gateway.rulefile import parse_yaml
from gateway.settings import Settings
from tests.conftest import REPO
from tests.ops.conftest import audit_lines, free_port, start_gateway, stop, wait_ready, write_config

COMPOSE = REPO / "docker-compose.yml"


def round_robin_entry(backends: list[str]) -> web.Application:
    """The entry point's job (deploy/entry-nginx.conf): alternate replicas, set X-Forwarded-For."""
    turn = itertools.cycle(backends)
    key = web.AppKey("session", aiohttp.ClientSession)
    app = web.Application()

    async def session(app):
        app[key] = aiohttp.ClientSession()
        yield
        await app[key].close()

    async def forward(request: web.Request) -> web.Response:
        headers = {"Authorization": request.headers.get("Authorization", ""), "X-Forwarded-For": request.remote}
        async with app[key].get(next(turn) + request.path_qs, headers=headers) as r:
            return web.Response(status=r.status, body=await r.read(), content_type=r.content_type)

    app.cleanup_ctx.append(session)
    app.router.add_get("/{tail:.*}", forward)
    return app


async def start_democrm(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "democrm",
        "--port",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    await wait_ready(proc, f"http://127.0.0.1:{port}/health")
    return proc


async def run_topology(aiohttp_server, tmp_path, redis_url: str, requests: int, check=None, **extra) -> list[int]:
    """Start the topology, send ``requests`` reads of consecutive ids through the entry, then run
    ``check(replica_urls)`` while everything is still up; returns audit lines per replica."""
    crm_port = free_port()
    crm = await start_democrm(crm_port)
    replicas = []
    try:
        for name in ("gw1", "gw2"):
            port = free_port()
            config = write_config(
                tmp_path / name,
                upstream=f"http://127.0.0.1:{crm_port}",
                port=port,
                redis_url=redis_url,
                trusted_proxies=["127.0.0.1/32"],
                **extra,
            )
            replicas.append((port, await start_gateway(config)))
        urls = [f"http://127.0.0.1:{p}" for p, _ in replicas]
        entry = await aiohttp_server(round_robin_entry(urls))
        headers = {"Authorization": f"Bearer {mint_token('grace')}"}
        async with aiohttp.ClientSession() as s:
            for i in range(1, requests + 1):
                async with s.get(str(entry.make_url(f"/api/customers/{i}")), headers=headers) as r:
                    assert r.status == 200
                    assert (await r.json())["id"] == i
        if check is not None:
            await check(urls)
    finally:
        codes = [await stop(proc) for _, proc in replicas]
        crm.terminate()
        await crm.wait()
    assert [code for code, _ in codes] == [0, 0], codes
    return [len(audit_lines(tmp_path / name / "audit.log")) for name in ("gw1", "gw2")]


@pytest.mark.slow
async def test_two_replicas_behind_one_entry_serve_and_audit_every_request(aiohttp_server, tmp_path, redis_url):
    assert await run_topology(aiohttp_server, tmp_path, redis_url, 10) == [5, 5]


@pytest.mark.slow
async def test_two_replicas_count_together_and_agree_on_alerts(aiohttp_server, tmp_path, redis_url):
    """The round robin gives each replica every other id: neither alone ever sees two consecutive
    ids, so the enumeration alert (more than 15 consecutive ids in 5 minutes) can only fire if the
    replicas count into the same Redis; both then list the same, single alert."""
    analyst = {"Authorization": f"Bearer {mint_token('heidi')}"}

    async def check(urls):
        seen = []
        async with aiohttp.ClientSession() as s:
            for url in urls:
                for _ in range(100):  # counting is off the request path: give it a moment
                    async with s.get(url + "/_gw/api/alerts", headers=analyst) as r:
                        assert r.status == 200
                        body = await r.json()
                    alerts = [a for a in body["alerts"] if a["type"] == "enumeration-sequential"]
                    if alerts:
                        break
                    await asyncio.sleep(0.05)
                seen.append([(a["id"], a["user"]) for a in alerts])
        assert seen[0] == seen[1] and len(seen[0]) == 1 and seen[0][0][1] == "grace", seen

    assert await run_topology(aiohttp_server, tmp_path, redis_url, 20, check=check, signals={"backend": "redis"}) == [
        10,
        10,
    ]


def test_compose_runs_crm_redis_two_gateways_and_one_entry():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"crm", "redis", "gateway-1", "gateway-2", "entry"}
    assert [p for s in services.values() for p in s.get("ports", [])] == ["8080:8080"]  # one way in
    for name in ("gateway-1", "gateway-2"):
        gw = services[name]
        assert "./rules:/etc/crmgw/rules:ro" in gw["volumes"]
        assert gw["environment"]["CRMGW_REDIS_URL"] == "redis://redis:6379/0"
        assert gw["depends_on"]["redis"]["condition"] == "service_healthy"


def test_every_compose_service_has_a_healthcheck():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert all(s.get("healthcheck", {}).get("test") for s in services.values())


def test_the_entry_point_balances_over_both_replicas():
    conf = (REPO / "deploy" / "entry-nginx.conf").read_text()
    assert "server gateway-1:8080" in conf and "server gateway-2:8080" in conf
    entry = yaml.safe_load(COMPOSE.read_text())["services"]["entry"]
    assert "./deploy/entry-nginx.conf:/etc/nginx/conf.d/default.conf:ro" in entry["volumes"]


def test_the_image_settings_file_validates():
    doc, errors = parse_yaml((REPO / "deploy" / "gateway.yaml").read_text(), "deploy/gateway.yaml")
    assert doc is not None and not errors
    Settings.model_validate(doc.data)


@pytest.mark.parametrize("image_file", ["Dockerfile"])
def test_the_image_serves_with_workers_and_does_not_bake_rules_in(image_file):
    text = (REPO / image_file).read_text()
    assert '"serve", "--config", "/etc/crmgw/gateway.yaml", "--workers"' in text
    assert "COPY rules" not in text
