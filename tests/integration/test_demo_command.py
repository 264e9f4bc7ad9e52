"""README command 1: `crmgw demo` starts the CRM and the gateway and its printed commands work."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys

import aiohttp
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def demo(tmp_path, *args: str):
    """``crmgw demo ARGS`` on free ports; yields (gateway base URL, everything it printed)."""
    port, crm_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "demo",
        *args,
        "--port",
        str(port),
        "--crm-port",
        str(crm_port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        out = b""
        while b"Stop the demo" not in out:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, out.decode()
            out += line
        yield f"http://127.0.0.1:{port}", out.decode()
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 15)


async def test_demo_prints_tokens_that_show_allow_mask_scope_and_deny(tmp_path):
    async with demo(tmp_path) as (base, out):
        tokens = dict(re.findall(r"^export (\w+)=(\S+)$", out, re.M))
        assert set(tokens) >= {"ALICE", "DAVE", "FRANK", "GRACE", "IVAN", "CAROL"}
        async with aiohttp.ClientSession() as s:

            async def get(path, who):
                async with s.get(base + path, headers={"Authorization": f"Bearer {tokens[who]}"}) as r:
                    return r.status, await r.json()

            status, body = await get("/api/customers?page_size=50", "DAVE")
            assert status == 200 and body["data"] and {r["team"] for r in body["data"]} == {"east"}
            status, body = await get("/api/customers/1", "FRANK")
            assert status == 200 and "quote_price" not in body and body["phone"].startswith("*")
            status, body = await get("/api/customers", "IVAN")
            assert status == 403 and body["reason"] == "user-inactive"
            status, body = await get("/api/customers/export.csv", "CAROL")
            # no allow rule is for a rep's export: a default deny that names no rule
            assert status == 403 and body["reason"] == "default-deny" and "rule" not in body
            async with s.post(
                base + "/api/customers",
                json={"name": "Gift", "owner_id": "bob"},
                headers={"Authorization": f"Bearer {tokens['CAROL']}"},
            ) as r:
                assert r.status == 403 and (await r.json())["reason"] == "write-out-of-scope"


async def test_the_realistic_demo_prints_commands_that_show_scoped_answers_and_refused_writes(tmp_path):
    async with demo(tmp_path, "--profile", "realistic") as (base, out):
        tokens = dict(re.findall(r"^export (\w+)=(\S+)$", out, re.M))
        assign = re.search(r"-d '(title=Gift&assigned_to=[0-9a-f-]+)'", out).group(1)
        carol = {"Authorization": f"Bearer {tokens['CAROL']}"}
        async with aiohttp.ClientSession() as s:
            async with s.get(base + "/api/v2/leads/?limit=5", headers=carol) as r:
                body = await r.json()
                assert r.status == 200 and "users" not in body and body["count"] == len(body["results"])
            async with s.post(
                base + "/api/v2/leads/",
                data=assign,
                headers={**carol, "Content-Type": "application/x-www-form-urlencoded"},
            ) as r:
                assert r.status == 403 and (await r.json())["reason"] == "write-out-of-scope"
            escalate = re.search(r"PATCH (\S+/api/v2/leads/[0-9a-f-]+/)", out).group(1)
            async with s.patch(escalate, json={"title": "Please escalate"}, headers=carol) as r:
                assert r.status == 200 and (await r.json())["reason"] == "write-committed-out-of-scope"


async def test_demo_prints_the_console_url_and_an_analyst_token_that_logs_in(tmp_path):
    async with demo(tmp_path) as (base, out):
        console = re.search(r"^\s+console\s+(http://\S+)", out, re.M).group(1)
        heidi = dict(re.findall(r"^export (\w+)=(\S+)$", out, re.M))["HEIDI"]
        assert console == base + "/_gw/console/"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:  # cookies for an IP
            async with s.get(console + "login") as r:
                assert r.status == 200
                csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)
            async with s.post(
                console + "login", data={"csrf": csrf, "token": heidi}, allow_redirects=False, headers={"Origin": base}
            ) as r:
                assert r.status in (302, 303), await r.text()
                assert r.headers["Location"] == "/_gw/console/alerts"
            async with s.get(base + "/_gw/console/alerts", allow_redirects=False) as r:
                assert r.status == 200 and "heidi" in await r.text()
