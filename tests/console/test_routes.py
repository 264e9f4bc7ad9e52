"""The console's guard: only the configured roles, CSRF on every POST, security headers, login/logout."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from aiohttp import web

from gateway.app import GATEWAY, create_app
from gateway.console import ConsoleConfig, register_console
from gateway.console.routes import ROUTE_NAME
from gateway.console.session import SESSION_COOKIE
from gateway.identity.devkeys import mint_token
from gateway.rulestore import RuleStore
from tests.conftest import RULES, open_rules
from tests.console.conftest import CSRF, alert_kwargs, csrf_of, origin, sign_in
from tests.integration.conftest import auth, gateway_settings

PUBLIC = {"/_gw/console/login", "/_gw/console/logout", "/_gw/console/static/{name}"}
# Open to every authenticated directory user (a rep asks for their own access): tests/access covers them.
EVERY_USER = "/_gw/api/access-requests"
SAMPLE = {
    "id": "01KJSESXM0QNEFBWBWPCSFWHBY",
    "user": "alice",
    "action": "ack",
    "tail": "anything",
    "name": "console.css",
}


def _console_and_api_routes() -> list[tuple[str, str]]:
    """Every route of the console and of the admin APIs, read from a real app: new routes are covered."""
    store = open_rules(RULES)
    scratch = Path(tempfile.mkdtemp(prefix="crmgw-routes-"))  # collection time: no tmp_path yet
    app = create_app(gateway_settings("http://127.0.0.1:9", scratch, RULES), store)
    if ROUTE_NAME not in app.router:  # until create_app registers the console itself
        register_console(app, app[GATEWAY], ConsoleConfig())
    app[GATEWAY].audit.close()
    shutil.rmtree(scratch, ignore_errors=True)
    routes = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if not path.startswith(("/_gw/console", "/_gw/api")) or path in PUBLIC or path.startswith(EVERY_USER):
            continue
        method = "GET" if route.method in ("*", "HEAD") else route.method
        routes.add((method, path.format(**SAMPLE)))
    return sorted(routes)


ROUTES = _console_and_api_routes()


def test_the_route_list_covers_pages_actions_and_apis():
    paths = {p for _, p in ROUTES}
    assert {
        "/_gw/console/alerts",
        "/_gw/console/rules",
        "/_gw/console/decisions",
        "/_gw/api/alerts",
        "/_gw/console/api/decisions",
        f"/_gw/console/alerts/{SAMPLE['id']}/action",
    } <= paths


@pytest.mark.parametrize("method,path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_a_sales_rep_gets_403_on_every_console_page_and_api(console, method, path):
    resp = await console.request(method, path, headers={**auth("alice"), **origin(console)}, allow_redirects=False)
    assert resp.status == 403


async def test_a_sales_rep_with_a_validly_signed_session_cookie_gets_403_too(console):
    # Login refuses her, but even a cookie the console signed must not open any page.
    console.session.cookie_jar.update_cookies({SESSION_COOKIE: console.console.sessions.seal(mint_token("alice"))})
    statuses = {}
    for method, path in [r for r in ROUTES if r[1].startswith("/_gw/console")]:  # the cookie is the console's
        resp = await console.request(method, path, headers=origin(console), allow_redirects=False)
        statuses[f"{method} {path}"] = resp.status
    assert set(statuses.values()) == {403}, statuses


async def test_a_browser_without_a_session_is_sent_to_the_login_page(console):
    resp = await console.get("/_gw/console/alerts?level=high", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/_gw/console/login?next=%2F_gw%2Fconsole%2Falerts%3Flevel%3Dhigh"


async def test_an_analyst_signs_in_with_a_token_and_gets_an_httponly_strict_cookie(console):
    page = await console.get("/_gw/console/login")
    token = CSRF.search(await page.text()).group(1)
    resp = await console.post(
        "/_gw/console/login",
        data={"csrf": token, "token": mint_token("heidi"), "next": "/_gw/console/rules"},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/_gw/console/rules"
    cookie = resp.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/_gw/console"  # never sent to the proxied CRM routes
    assert (await console.get("/_gw/console/rules")).status == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/elsewhere", "/_gw/console/..//x"])
async def test_login_never_redirects_outside_the_console(console, target):
    page = await console.get("/_gw/console/login")
    token = CSRF.search(await page.text()).group(1)
    resp = await console.post(
        "/_gw/console/login",
        data={"csrf": token, "token": mint_token("heidi"), "next": target},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/_gw/console/alerts"


async def test_login_without_the_form_nonce_is_refused(console):
    resp = await console.post(
        "/_gw/console/login",
        data={"csrf": "x", "token": mint_token("heidi")},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 403
    assert SESSION_COOKIE not in resp.cookies


async def test_a_bad_token_is_refused_at_login(console):
    page = await console.get("/_gw/console/login")
    token = CSRF.search(await page.text()).group(1)
    resp = await console.post(
        "/_gw/console/login", data={"csrf": token, "token": "not-a-jwt"}, headers=origin(console), allow_redirects=False
    )
    assert resp.status == 401
    assert "The token was not accepted" in await resp.text()


async def test_logout_clears_the_session(console):
    await sign_in(console, "heidi")
    csrf = await csrf_of(console, "/_gw/console/alerts")
    resp = await console.post(
        "/_gw/console/logout", data={"csrf": csrf}, headers=origin(console), allow_redirects=False
    )
    assert resp.status == 303
    assert (await console.get("/_gw/console/alerts", allow_redirects=False)).status == 303


async def test_an_action_without_the_csrf_token_is_refused(console):
    alert_id = await console.gw.alerts.raise_alert(**alert_kwargs())
    await sign_in(console, "heidi")
    resp = await console.post(
        f"/_gw/console/alerts/{alert_id}/action", data={"action": "ack"}, headers=origin(console), allow_redirects=False
    )
    assert resp.status == 403
    assert (await console.gw.alerts.get(alert_id)).status == "open"


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"}, {}])
async def test_an_action_from_another_origin_is_refused_even_with_the_token(console, headers):
    alert_id = await console.gw.alerts.raise_alert(**alert_kwargs())
    await sign_in(console, "heidi")
    csrf = await csrf_of(console, f"/_gw/console/alerts/{alert_id}")
    resp = await console.post(
        f"/_gw/console/alerts/{alert_id}/action",
        data={"action": "ack", "csrf": csrf},
        headers=headers,
        allow_redirects=False,
        skip_auto_headers=["Origin"],
    )
    assert resp.status == 403
    assert (await console.gw.alerts.get(alert_id)).status == "open"


async def test_a_csrf_token_of_another_session_is_refused(console):
    alert_id = await console.gw.alerts.raise_alert(**alert_kwargs())
    other = console.console.sessions.csrf_token("cookie:someone-else")
    await sign_in(console, "heidi")
    resp = await console.post(
        f"/_gw/console/alerts/{alert_id}/action",
        data={"action": "ack", "csrf": other},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 403


@pytest.mark.parametrize(
    "path",
    [
        "/_gw/console/alerts",
        "/_gw/console/rules",
        "/_gw/console/decisions",
        "/_gw/console/users/alice",
        "/_gw/console/login",
    ],
)
async def test_pages_carry_the_security_headers(console, path):
    resp = await console.get(path, headers=auth("heidi"))
    assert resp.status == 200
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in await resp.text()  # no inline script: console.js comes from static


async def test_static_assets_are_served_by_the_gateway(console):
    resp = await console.get("/_gw/console/static/console.js")
    assert resp.status == 200 and resp.content_type == "text/javascript"
    resp = await console.get("/_gw/console/static/..%2Fconfig.py", allow_redirects=False)
    assert resp.status == 404 and "ConsoleConfig" not in await resp.text()


async def test_unknown_console_paths_are_404_for_analysts(console):
    assert (await console.get("/_gw/console/nothing-here", headers=auth("heidi"))).status == 404


def test_a_disabled_console_registers_nothing(tmp_path):
    store, _ = RuleStore.open(RULES)
    gw = create_app(gateway_settings("http://127.0.0.1:9", tmp_path, RULES), store)[GATEWAY]
    app = web.Application()
    assert register_console(app, gw, ConsoleConfig(enabled=False)) is None
    assert not list(app.router.routes())
    gw.audit.close()
