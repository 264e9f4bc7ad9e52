"""Serving: worker processes, graceful shutdown under load, connection limits, request timeouts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from democrm.app import create_app as create_crm
from gateway.identity.devkeys import mint_token
from tests.ops.conftest import CRM_TOKEN, audit_lines, children_of, free_port, start_gateway, stop, write_config

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {mint_token('grace')}"}


def slow_crm(delay: float, arrived: list):
    """A CRM stand-in that answers every customer read after ``delay`` seconds."""

    async def customer(request: web.Request) -> web.Response:
        arrived.append(request.path)
        await asyncio.sleep(delay)
        return web.json_response({"id": 1, "owner_id": "alice", "team": "east", "region": "emea"})

    app = web.Application()
    app.router.add_get("/api/customers/{id}", customer)
    return app


def sockets_of(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def connected_to(port: int) -> set[str]:
    """Inodes of established TCP connections whose remote end is 127.0.0.1:port."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if state == "01" and remote.endswith(f":{port:04X}"):
            found.add(inode)
    return found


async def test_two_workers_serve_from_two_processes(aiohttp_server, tmp_path):
    crm = await aiohttp_server(create_crm(service_token=CRM_TOKEN))
    port = free_port()
    config = write_config(tmp_path, upstream=str(crm.make_url("")), port=port)
    proc = await start_gateway(config, "--workers", "2")
    try:
        workers = children_of(proc.pid)
        assert len(workers) == 2
        # A new connection per request: SO_REUSEPORT spreads connections over the workers.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as s:
            for _ in range(40):
                async with s.get(f"http://127.0.0.1:{port}/api/customers/1", headers=AUTH) as r:
                    assert r.status == 200
        # Each worker that forwarded a request keeps a pooled keep-alive connection to the CRM.
        to_crm = connected_to(crm.port)
        assert all(sockets_of(pid) & to_crm for pid in workers)
        # Whichever worker answers /metrics adds up both (prometheus-client multi-process mode).
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
            text = await r.text()
        line = 'crmgw_requests_total{effect="allow",operation="customers.view",status="200"}'
        assert f"{line} 40.0" in text
    finally:
        code, out = await stop(proc)
    assert code == 0, out
    assert len(audit_lines(tmp_path / "audit.log")) == 40


async def test_sigterm_drains_in_flight_refuses_new_and_loses_no_audit_line(aiohttp_server, tmp_path):
    arrived: list = []
    crm = await aiohttp_server(slow_crm(1.5, arrived))
    port = free_port()
    config = write_config(tmp_path, upstream=str(crm.make_url("")), port=port)
    proc = await start_gateway(config, "--workers", "2", "--drain-timeout", "20")
    url = f"http://127.0.0.1:{port}/api/customers/1"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:

        async def one() -> int:
            async with s.get(url, headers=AUTH) as r:
                await r.read()
                return r.status

        in_flight = [asyncio.create_task(one()) for _ in range(12)]
        while len(arrived) < 12:  # every request has reached the CRM: they are in flight
            await asyncio.sleep(0.02)
        proc.terminate()
        refused = False
        for _ in range(100):  # the listeners close at once; the in-flight requests go on
            try:
                async with s.get(f"http://127.0.0.1:{port}/healthz"):
                    pass
            except aiohttp.ClientConnectionError:
                refused = True
                break
            await asyncio.sleep(0.01)
        assert refused and not any(t.done() for t in in_flight)
        statuses = await asyncio.gather(*in_flight)
    code, out = await stop(proc)
    assert statuses == [200] * 12
    assert code == 0, out
    assert len(audit_lines(tmp_path / "audit.log")) == len(statuses)


async def test_connections_over_the_limit_are_answered_503(aiohttp_server, tmp_path):
    arrived: list = []
    crm = await aiohttp_server(slow_crm(1.0, arrived))
    port = free_port()
    config = write_config(tmp_path, upstream=str(crm.make_url("")), port=port)
    proc = await start_gateway(config, "--max-connections", "2")
    try:
        # Two keep-alive connections take the two places (one answered request each proves it).
        held = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            held.append(writer)
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/healthz") as r:
            assert r.status == 503
            assert (await r.json())["reason"] == "too-many-connections"
        for writer in held:
            writer.close()
    finally:
        code, out = await stop(proc)
    assert code == 0, out


async def test_a_request_over_the_request_timeout_is_answered_504_and_audited(aiohttp_server, tmp_path):
    arrived: list = []
    crm = await aiohttp_server(slow_crm(3.0, arrived))
    port = free_port()
    config = write_config(tmp_path, upstream=str(crm.make_url("")), port=port)
    proc = await start_gateway(config, "--request-timeout", "0.5")
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/api/customers/1", headers=AUTH) as r:
                assert r.status == 504
                assert (await r.json())["reason"] == "request-timeout"
    finally:
        code, out = await stop(proc)
    assert code == 0, out
    assert len(audit_lines(tmp_path / "audit.log")) == 1


def test_the_serve_options_help_quotes_the_settings_defaults():
    from gateway import serve_args
    from gateway.settings import Limits

    fields = Limits.model_fields
    assert fields["drain_timeout"].default == serve_args.DEFAULT_DRAIN_TIMEOUT
    assert fields["request_timeout"].default == serve_args.DEFAULT_REQUEST_TIMEOUT
    assert fields["max_connections"].default == serve_args.DEFAULT_MAX_CONNECTIONS
