"""A live gateway for the browser tests: democrm + the gateway (console, alerts, signals) on real
loopback ports, in a background thread with its own event loop.

The browser (Playwright's sync API driving /usr/bin/chromium) runs in the test's thread; the test
reaches into the server's loop with :meth:`LiveGateway.call` (e.g. to send simulated traffic with
an aiohttp client, or to read the alert store).

Everything is wired by create_app: the signals stage (Redis backend, rules/anomalies.yaml) raises
alerts into the gateway's AlertStore; the harness only adds the console (until create_app does).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import redis as redis_sync
from aiohttp import web

from democrm.app import create_app as create_crm
from gateway.app import GATEWAY, create_app
from gateway.console import ConsoleConfig, register_console
from gateway.console.routes import ROUTE_NAME
from gateway.rulestore import RuleStore
from tests.conftest import RULES
from tests.integration.conftest import CRM_TOKEN, gateway_settings


class LiveGateway:
    def __init__(self, base_dir: Path, redis_url: str):
        self.base_dir = base_dir
        self.redis_url = redis_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-gateway", daemon=True)
        self.runners: list[web.AppRunner] = []
        self.url = ""
        self.gw = None

    def call(self, coro: Coroutine, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> LiveGateway:
        self.thread.start()
        self.call(self._start())
        return self

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def _start(self) -> None:
        crm_url = await self._serve(create_crm(service_token=CRM_TOKEN))
        settings = gateway_settings(
            crm_url, self.base_dir, RULES, redis_url=self.redis_url, signals={"backend": "redis"}
        )
        store, errors = RuleStore.open(RULES)
        assert store is not None, errors
        app = create_app(settings, store)  # the real clock: audit lines and alerts agree on "now"
        self.gw = app[GATEWAY]
        if ROUTE_NAME not in app.router:  # until create_app registers the console itself
            register_console(app, self.gw, ConsoleConfig())
        self.url = await self._serve(app)

    def stop(self) -> None:
        async def _stop():
            for runner in reversed(self.runners):
                await runner.cleanup()

        try:
            self.call(_stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


CHROMIUM = "/usr/bin/chromium"  # Debian's chromium: never a downloaded browser
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def running(gateway_class: type[LiveGateway], redis_server: tuple[str, int], folder: Path) -> Iterator[Any]:
    """A live gateway of ``gateway_class`` on a flushed test Redis, stopped afterwards."""
    url, port = redis_server
    client = redis_sync.Redis(port=port)
    client.flushdb()
    client.close()
    server = gateway_class(folder, url).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium driven by Playwright's sync API; raises (fails the test) if it cannot start."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
