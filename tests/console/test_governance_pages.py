"""Governance actions in the console (issue 16 point 3) on the real gateway: suspend / unsuspend a
user, block or require a step-up for a period, lift from an alert; the request path honours each
at once; /_gw/health and ``crmgw users`` show the overlay."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import RULES
from tests.console.conftest import alert_kwargs, csrf_of, origin, sign_in
from tests.console.test_routes import ROUTES
from tests.integration.conftest import auth


async def govern(console, user: str, page: str | None = None, **form):
    csrf = await csrf_of(console, page or f"/_gw/console/users/{user}/govern")
    return await console.post(
        f"/_gw/console/users/{user}/govern", data={"csrf": csrf, **form}, headers=origin(console), allow_redirects=False
    )


async def status_of(console, user: str) -> tuple[int, str]:
    resp = await console.get("/api/customers", headers=auth(user))
    body = await resp.json()
    return resp.status, body.get("reason", "") if resp.status >= 400 else ""


def crmgw_users(redis_url: str) -> list[dict]:
    cli = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "users", "--rules", str(RULES), "--redis-url", redis_url, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    return json.loads(cli.stdout)


@pytest.mark.slow  # runs `crmgw users` twice
async def test_suspending_a_user_refuses_their_next_request_until_unsuspended(console, redis_url):
    assert await status_of(console, "alice") == (200, "")
    await sign_in(console, "heidi")
    resp = await govern(console, "alice", action="suspend", note="credentials <b>phished</b>")
    assert resp.status == 303 and resp.headers["Location"].startswith("/_gw/console/users/alice/govern?done=suspend")
    assert await status_of(console, "alice") == (403, "user-suspended")
    assert await status_of(console, "bob") == (200, "")
    health = await (await console.get("/_gw/health")).json()
    assert health["governance"]["users"] == ["alice"] and health["governance"]["shared"] is True
    rows = {r["user"]: r for r in crmgw_users(redis_url)}
    assert rows["alice"]["suspended"]["actor"] == "heidi" and rows["alice"]["effective"] == "refused"
    assert rows["alice"]["directory_status"] == "active"  # the rule files are unchanged
    assert "suspended" not in rows["bob"] and rows["bob"]["effective"] == "as the rules say"
    page = await (await console.get("/_gw/console/governance")).text()
    assert '<tr class="suspension" data-user="alice">' in page
    assert "credentials &lt;b&gt;phished&lt;/b&gt;" in page and "<b>phished" not in page
    resp = await govern(console, "alice", action="unsuspend", note="password reset")
    assert resp.status == 303
    assert await status_of(console, "alice") == (200, "")
    assert [r["action"] for r in crmgw_users(redis_url) if r["user"] == "alice" and "suspended" in r] == []


async def test_a_block_for_a_period_from_an_alert_is_recorded_there_and_lifted_from_it(console):
    alert_id = await console.gw.alerts.raise_alert(**alert_kwargs(user="bob"))
    await sign_in(console, "heidi")
    alert_page = f"/_gw/console/alerts/{alert_id}"
    resp = await govern(
        console,
        "bob",
        alert_page,
        action="block",
        seconds="3600",
        note="stop it",
        alert=alert_id,
        back=f"alert:{alert_id}",
    )
    assert resp.status == 303 and resp.headers["Location"].startswith(alert_page + "?done=block")
    assert (await status_of(console, "bob"))[0] == 403
    alert = await console.gw.alerts.get(alert_id)
    assert (alert.history[-1].action, alert.history[-1].actor) == ("governance_block", "heidi")
    html = await (await console.get(alert_page)).text()
    assert 'class="lift-button">Lift block</button>' in html
    csrf = await csrf_of(console, alert_page)
    resp = await console.post(
        "/_gw/console/users/bob/lift",
        data={"csrf": csrf, "action": "block", "note": "was a test", "back": f"alert:{alert_id}"},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == f"{alert_page}?lifted=bob"
    assert await status_of(console, "bob") == (200, "")


async def test_a_step_up_for_a_period_requires_mfa(console):
    await sign_in(console, "heidi")
    assert (await govern(console, "bob", action="step_up", seconds="3600", note="suspicious login")).status == 303
    assert (await console.get("/api/customers", headers=auth("bob"))).status == 401
    assert (await console.get("/api/customers", headers=auth("bob", mfa=True))).status == 200


async def test_refusals_own_account_no_note_no_csrf_and_a_viewer_without_the_lift_role(console):
    await sign_in(console, "heidi")
    resp = await govern(console, "heidi", "/_gw/console/governance", action="suspend", note="me")
    assert resp.status == 403 and "own account" in await resp.text()
    resp = await govern(console, "alice", action="suspend", note="")
    assert resp.status == 400
    resp = await console.post(
        "/_gw/console/users/alice/govern", data={"action": "suspend", "note": "x"}, headers=origin(console)
    )
    assert resp.status == 403 and "csrf-failed" in await resp.text()
    await sign_in(console, "grace")  # admin: may look, may not act (lift_roles: security_analyst)
    page = await (await console.get("/_gw/console/users/alice/govern")).text()
    assert 'action="/_gw/console/users/alice/govern"' not in page
    resp = await govern(console, "alice", "/_gw/console/governance", action="suspend", note="x")
    assert resp.status == 403 and "role-unauthorized" in await resp.text()
    assert await status_of(console, "alice") == (200, "")


async def test_a_second_suspend_never_shortens_the_first_and_the_analyst_is_told(console):
    await sign_in(console, "heidi")
    assert (await govern(console, "alice", action="suspend", note="phished, until lifted")).status == 303
    resp = await govern(console, "alice", action="suspend", seconds="60", note="from the alert: a minute")
    assert resp.status == 303
    done = (await (await console.get(resp.headers["Location"])).text()).replace("&#39;", "'")
    assert "already suspended; the suspension by heidi until lifted lasts at least as long" in done
    guard = console.gw.governance
    assert guard.state.get("alice", guard.now()).until == 0.0  # until lifted, still
    assert [s.until for s in await guard.store.active(guard.now())] == [0.0]


async def test_the_user_page_links_to_governance_and_the_risk_is_explained(console):
    await console.gw.alerts.raise_alert(**alert_kwargs(user="carol", type="<img src=x>"))
    await sign_in(console, "heidi")
    user_page = await (await console.get("/_gw/console/users/carol")).text()
    assert 'href="/_gw/console/users/carol/govern"' in user_page
    page = await (await console.get("/_gw/console/users/carol/govern")).text()
    assert re.search(r'<span class="risk risk-score">10.5</span>', page)  # high 7 x score 1.5
    assert "&lt;img src=x&gt;" in page and "<img src=x>" not in page
    resp = await console.get("/_gw/console/governance/user?user=carol", allow_redirects=False)
    assert resp.headers["Location"] == "/_gw/console/users/carol/govern"


def test_the_sales_rep_403_list_covers_the_new_pages_and_actions():
    assert {
        ("POST", "/_gw/console/alerts/bulk"),
        ("GET", "/_gw/console/incidents"),
        ("POST", "/_gw/console/filters"),
        ("GET", "/_gw/console/governance"),
        ("GET", "/_gw/console/dashboard"),
    } <= set(ROUTES)
    assert {p for m, p in ROUTES if p.endswith("/govern")} and {p for m, p in ROUTES if "/incidents/" in p}
