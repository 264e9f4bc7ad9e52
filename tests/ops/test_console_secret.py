"""One console secret for every worker of ``crmgw serve --workers N`` (issue 11: with a secret per
worker, 5 of 12 page loads bounced to the login page).

A configured secret ($console.session_secret_env) is what every worker uses; without one, the
supervisor makes one up before forking and its workers inherit it. Several replicas need the
operator's (tests/ops/test_compose.py runs docker-compose.yml, which sets one for both).
"""

from __future__ import annotations

import os

import aiohttp
import pytest

from gateway.console import ConsoleConfig
from gateway.server import share_console_secret
from tests.ops.conftest import free_port, start_gateway, stop, write_config
from tests.ops.test_compose import CONSOLE, console_login, page_loads
from tests.ops.test_topology import start_democrm


class _Settings:
    def __init__(self, **console):
        self.console = ConsoleConfig(**console)


def test_a_configured_secret_is_kept(monkeypatch):
    monkeypatch.setenv("CRMGW_CONSOLE_SECRET", "s" * 40)
    share_console_secret(_Settings())
    assert ConsoleConfig().secret() == b"s" * 40


def test_without_a_configured_secret_one_is_made_for_the_workers(monkeypatch):
    monkeypatch.setenv("CRMGW_CONSOLE_SECRET", "")  # set but empty counts as not configured
    monkeypatch.delenv("OTHER_SECRET", raising=False)
    share_console_secret(_Settings(session_secret_env="OTHER_SECRET"))
    config = ConsoleConfig(session_secret_env="OTHER_SECRET")
    assert len(config.secret()) >= 32 and config.secret() == config.secret()  # the same on every call


def test_a_disabled_console_gets_no_secret(monkeypatch):
    monkeypatch.delenv("OTHER_SECRET", raising=False)
    share_console_secret(_Settings(enabled=False, session_secret_env="OTHER_SECRET"))
    assert "OTHER_SECRET" not in os.environ


@pytest.mark.slow
async def test_two_workers_without_a_configured_secret_keep_one_login(tmp_path, monkeypatch):
    monkeypatch.delenv("CRMGW_CONSOLE_SECRET", raising=False)
    crm_port, port = free_port(), free_port()
    crm = await start_democrm(crm_port)
    try:
        config = write_config(
            tmp_path,
            upstream=f"http://127.0.0.1:{crm_port}",
            port=port,
            alerts={"journal": str(tmp_path / "alerts.jsonl")},
        )
        proc = await start_gateway(config, "--workers", "2")
        base = f"http://127.0.0.1:{port}"
        try:
            # A new connection per request: the kernel spreads them over both workers (SO_REUSEPORT),
            # so the login form, its POST and the pages are answered by either worker.
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar, connector=aiohttp.TCPConnector(force_close=True)) as s:
                await console_login(s, base, "heidi")
                assert await page_loads(s, base + CONSOLE + "/alerts", 20) == [200] * 20
        finally:
            code, out = await stop(proc)
        assert code == 0, out
        assert "CRMGW_CONSOLE_SECRET is not set" in out
    finally:
        crm.terminate()
        await crm.wait()
