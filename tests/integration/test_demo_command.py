"""README command 1: `crmgw demo` starts the CRM and the gateway and its printed commands work."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_demo_prints_tokens_that_show_allow_mask_scope_and_deny(tmp_path):
    port, crm_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), "--crm-port", str(crm_port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        out = b""
        while b"Stop the demo" not in out:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, out.decode()
            out += line
        tokens = dict(re.findall(r"^export (\w+)=(\S+)$", out.decode(), re.M))
        assert set(tokens) >= {"ALICE", "DAVE", "FRANK", "GRACE", "IVAN", "CAROL"}
        base = f"http://127.0.0.1:{port}"
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
            assert status == 403 and body["rule"]
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 15)
