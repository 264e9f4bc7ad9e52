"""`crmgw serve --config FILE` as a real process in front of a real demo CRM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
import pytest

from democrm.app import create_app as create_crm
from gateway.identity.devkeys import mint_token
from tests.conftest import REPO
from tests.integration.test_demo_command import free_port

pytestmark = pytest.mark.slow


async def test_serve_proxies_decides_and_drains_on_sigterm(aiohttp_server, tmp_path):
    crm = await aiohttp_server(create_crm())
    port = free_port()
    config = (REPO / "examples" / "gateway.yaml").read_text()
    config = config.replace("port: 8080", f"port: {port}").replace(
        "http://127.0.0.1:8081", str(crm.make_url("")).rstrip("/")
    )
    config = config.replace("rules_dir: ../rules", f"rules_dir: {REPO / 'rules'}").replace(
        "../var/audit.log", "audit.log"
    )
    (tmp_path / "gateway.yaml").write_text(config)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--config",
        str(tmp_path / "gateway.yaml"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(100):
                try:
                    async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            headers = {"Authorization": f"Bearer {mint_token('grace')}"}
            async with s.get(f"http://127.0.0.1:{port}/api/customers?page_size=7", headers=headers) as r:
                assert r.status == 200
                assert len((await r.json())["data"]) == 7
            async with s.get(f"http://127.0.0.1:{port}/api/customers/export.csv", headers=headers) as r:
                assert r.status == 401 and (await r.json())["reason"] == "mfa-required"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    lines = (tmp_path / "audit.log").read_text().splitlines()
    assert len(lines) == 2


async def test_serve_refuses_to_start_on_bad_rules(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (tmp_path / "gateway.yaml").write_text(
        "upstream: {url: 'http://127.0.0.1:9'}\nrules_dir: rules\nidentity: {api_key: {header: X-API-Key}}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--config",
        str(tmp_path / "gateway.yaml"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode != 0
    assert b"required file is missing" in out and b"refusing to start" in out
