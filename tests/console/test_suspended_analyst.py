"""A suspended user loses the console and the admin APIs too, and a gateway that never read the
suspensions refuses everyone (review of issue 16): the real gateway (create_app) in front of
democrm, the alert store and the overlay on the test Redis."""

from __future__ import annotations

import socket

from gateway.app import GATEWAY, create_app
from gateway.governance.actions import Governor
from gateway.identity.devkeys import mint_token
from tests.conftest import RULES, open_rules
from tests.console.conftest import CSRF, crm, csrf_of, origin, sign_in  # noqa: F401  (crm: a fixture)
from tests.integration.conftest import auth, gateway_settings


async def suspend(console, user: str) -> None:
    """As another analyst does it from the console (the overlay on the test Redis)."""
    governor = Governor(console.gw.governance, console.gw.settings.data_root() / "governance.jsonl")
    await governor.act("suspend", user, actor="grace", note="compromised analyst")


async def test_a_suspended_analyst_is_refused_on_every_console_page_post_and_admin_api(console):
    gw = console.gw
    alert = await gw.alerts.raise_alert(
        user="bob", type="bulk-export", level="high", score=1.0, summary="s", evidence={}, rule=None, window="w"
    )
    assert alert is not None
    await sign_in(console, "heidi")  # signed in before the suspension: the session cookie stays
    csrf = await csrf_of(console, "/_gw/console/users/alice/govern")
    await suspend(console, "heidi")
    for path in ("/_gw/console/alerts", f"/_gw/console/alerts/{alert}", "/_gw/console/governance"):
        resp = await console.get(path)
        assert resp.status == 403 and "user-suspended" in await resp.text(), path
    resp = await console.post(
        "/_gw/console/users/alice/govern",
        data={"csrf": csrf, "action": "suspend", "note": "by a suspended analyst"},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 403 and "user-suspended" in await resp.text()
    assert gw.governance.state.get("alice", gw.governance.now()) is None
    for method, path in (
        ("GET", "/_gw/api/alerts"),
        ("POST", f"/_gw/api/alerts/{alert}/ack"),
        ("GET", "/_gw/api/access-requests"),
    ):
        resp = await console.request(method, path, headers=auth("heidi"), json={} if method == "POST" else None)
        assert (resp.status, (await resp.json())["reason"]) == (403, "user-suspended"), path
    assert (await gw.alerts.get(alert)).status == "open"
    resp = await console.get("/_gw/api/alerts", headers=auth("grace"))  # another analyst: unaffected
    assert resp.status == 200


async def test_a_suspended_analyst_cannot_sign_in_again(console):
    await suspend(console, "heidi")
    page = await console.get("/_gw/console/login")
    assert page.status == 200
    token = CSRF.search(await page.text()).group(1)
    resp = await console.post(
        "/_gw/console/login",
        data={"csrf": token, "token": mint_token("heidi"), "next": ""},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 403 and "user-suspended" in await resp.text()


async def test_a_gateway_started_while_redis_is_down_refuses_everyone_and_is_not_ready(
    aiohttp_client,
    crm,
    tmp_path,
    clock,
):
    with socket.socket() as s:  # a port nobody listens on: Redis down since start
        s.bind(("127.0.0.1", 0))
        down = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    settings = gateway_settings(str(crm.make_url("")).rstrip("/"), tmp_path, RULES, redis_url=down)
    app = create_app(settings, open_rules(RULES), clock=clock)
    client = await aiohttp_client(app)
    resp = await client.get("/api/customers", headers=auth("alice"))
    assert (resp.status, (await resp.json())["reason"]) == (503, "governance-unavailable")
    resp = await client.get("/_gw/api/alerts", headers=auth("heidi"))
    assert (resp.status, (await resp.json())["reason"]) == (503, "governance-unavailable")
    ready = await client.get("/readyz")
    assert ready.status == 503 and "governance-unavailable" in (await ready.json())["reasons"]
    health = await (await client.get("/_gw/health")).json()
    assert "governance-unavailable" in health["degraded"] and health["governance"]["loaded"] is False
    assert app[GATEWAY].governance.health()["problem"]
