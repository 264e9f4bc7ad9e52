"""Console fixtures: the real gateway (create_app) in front of the real demo CRM, a real alert store
on the test Redis, and the console registered on it.

create_app registers the console and the alerts API and opens the alert store in its lifecycle,
as under ``crmgw serve``; the console's settings come from the gateway's settings (``console:``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.app import GATEWAY, create_app
from gateway.console.routes import CONSOLE
from gateway.identity.devkeys import mint_token
from tests.conftest import RULES, open_rules
from tests.integration.conftest import gateway_settings

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def evidence(**over):
    """Evidence shaped like the signals stage's (gateway/signals/thresholds.py + recent requests)."""
    base = {
        "rule": "bulk-export",
        "source": "rules/anomalies.yaml:14",
        "count": "records_exported",
        "group": "m:1:",
        "timespan": "1h",
        "value": 900,
        "before": 300,
        "threshold": 600,
        "baseline": 200,
        "counters": {"requests": 4, "records_exported": 900, "exports": 3},
        "flags": {},
        "request": {"request_id": "r1", "operation": "customers.export", "path": "/api/customers/export.csv"},
        "recent_requests": [
            {
                "time": "2026-03-03T09:00:00+00:00",
                "method": "GET",
                "path": "/api/customers/export.csv",
                "operation": "customers.export",
                "status": 200,
                "effect": "allow",
                "client_ip": "10.1.2.3",
                "user_agent": "curl/8.0",
            }
        ],
    }
    base.update(over)
    return base


def alert_kwargs(**over):
    base = {
        "user": "alice",
        "type": "bulk-export",
        "level": "high",
        "score": 1.5,
        "summary": "alice exported 900 records in 1h (usual daily max 200)",
        "evidence": evidence(),
        "rule": "bulk-export",
        "window": "1h",
    }
    base.update(over)
    return base


async def build_console(
    aiohttp_client,
    crm,
    tmp_path,
    clock,
    redis_url,
    *,
    rules=RULES,
    **settings_extra,
):
    """The gateway app (create_app) with its console, started by the test client."""
    settings = gateway_settings(
        str(crm.make_url("")).rstrip("/"), tmp_path, rules, redis_url=redis_url, **settings_extra
    )
    app = create_app(settings, open_rules(rules), clock=clock)
    gw = app[GATEWAY]
    client = await aiohttp_client(app)  # startup opens gw.alerts (journal + the test Redis)
    assert gw.alerts is not None and gw.alerts.redis_up
    client.gw, client.console = gw, app[CONSOLE]
    return client


@pytest.fixture
async def crm(aiohttp_server):
    from democrm.app import create_app as create_crm
    from tests.integration.conftest import CRM_TOKEN

    return await aiohttp_server(create_crm(service_token=CRM_TOKEN))


@pytest.fixture
async def console(redis_url, aiohttp_client, crm, tmp_path, clock):
    return await build_console(aiohttp_client, crm, tmp_path, clock, redis_url)


def origin(client) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/")}


async def sign_in(client, user: str) -> None:
    """The login form, as a browser fills it: GET (nonce cookie + token), POST the token."""
    page = await client.get("/_gw/console/login")
    token = CSRF.search(await page.text()).group(1)
    resp = await client.post(
        "/_gw/console/login",
        data={"csrf": token, "token": mint_token(user), "next": ""},
        headers=origin(client),
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()


async def csrf_of(client, path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return CSRF.search(await resp.text()).group(1)


# --- the browser tests' fixtures (test_browser*.py; module-scoped, requested only by slow tests) ---


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest, redis_server: tuple[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """One live gateway (tests/console/live.py) per browser test module, on a flushed test Redis."""
    from tests.console.live import LiveGateway, running

    folder = tmp_path_factory.mktemp("live-" + request.module.__name__.rpartition(".")[2])
    with running(LiveGateway, redis_server, folder) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium through Playwright, one per browser test module."""
    from tests.console.live import chromium

    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any, live: Any) -> Iterator[Any]:
    """A fresh browser context on the live gateway; ``tab.dialogs`` and ``tab.errors`` collect the
    page's dialogs (dismissed) and script errors for the test to assert on."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live.url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.dialogs = []
    tab.errors = []
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    yield tab
    context.close()
