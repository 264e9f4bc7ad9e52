"""Blocks in the console: shown on the queue, the user page and the alert; lifted by an analyst (POST,
CSRF, role-checked), recorded in the alert's history; false positive offers to lift the block.

The block comes from real traffic: grace deletes 25 records through the gateway (the shipped
``mass-delete`` rule, action block), on the gateway's own Redis signals stage and alert store.
"""

from __future__ import annotations

import re

import pytest

from tests.console.conftest import build_console, csrf_of, origin, sign_in
from tests.integration.conftest import auth

QUEUE = "/_gw/console/alerts"


async def mass_delete(console, user: str = "grace") -> str:
    resp = await console.post("/api/customers/bulk-delete", json={"ids": list(range(1, 26))}, headers=auth(user))
    assert resp.status == 200, await resp.text()
    await console.gw.signals.drain()
    (alert,) = await console.gw.alerts.list(user=user)
    return alert.id


async def refused(console, user: str = "grace") -> bool:
    resp = await console.get("/api/customers/40", headers=auth(user))
    assert resp.status in (200, 403), await resp.text()
    return resp.status == 403


async def lift(console, user: str, page: str, **form):
    csrf = await csrf_of(console, page)
    return await console.post(
        f"/_gw/console/users/{user}/lift", data={"csrf": csrf, **form}, headers=origin(console), allow_redirects=False
    )


async def test_the_queue_and_the_user_page_show_the_block_with_its_alert_and_a_lift_form(console):
    alert_id = await mass_delete(console)
    await sign_in(console, "heidi")
    html = await (await console.get(QUEUE)).text()
    row = re.search(r'<tr class="measure" data-user="grace" data-action="block">.*?</tr>', html, re.S).group(0)
    assert "mass-delete" in row and f"/_gw/console/alerts/{alert_id}" in row
    assert 'action="/_gw/console/users/grace/lift"' in row and 'name="csrf"' in row
    user_page = await (await console.get("/_gw/console/users/grace")).text()
    assert 'data-action="block"' in user_page and 'action="/_gw/console/users/grace/lift"' in user_page
    alert_page = await (await console.get(f"/_gw/console/alerts/{alert_id}")).text()
    assert re.search(r'<input type="checkbox" name="lift" value="on" checked>', alert_page)


async def test_an_analyst_lifts_from_the_user_page_recorded_in_the_alert_history(console):
    alert_id = await mass_delete(console)
    assert await refused(console)
    await sign_in(console, "heidi")
    resp = await lift(console, "grace", "/_gw/console/users/grace", action="block", note="planned purge", back="user")
    assert resp.status == 303 and resp.headers["Location"] == "/_gw/console/users/grace?lifted=grace"
    assert not await refused(console)
    alert = await console.gw.alerts.get(alert_id)
    assert (alert.history[-1].actor, alert.history[-1].action) == ("heidi", "lift_block")
    assert alert.notes[-1].text.endswith("planned purge")
    html = await (await console.get(resp.headers["Location"])).text()
    assert "Lifted for grace" in html and 'data-action="block"' not in html
    history = await (await console.get(f"/_gw/console/alerts/{alert_id}")).text()
    assert "lift block" in history


@pytest.mark.parametrize(
    "form,headers,reason",
    [
        ({"note": "x", "back": "alerts"}, "no-csrf", "csrf-failed"),
        ({"note": "x", "back": "alerts", "csrf": "forged"}, "origin", "csrf-failed"),
        ({"note": "x", "back": "alerts", "csrf": "ok"}, "evil-origin", "csrf-failed"),
    ],
)
async def test_a_lift_without_the_csrf_token_or_from_another_origin_is_refused(console, form, headers, reason):
    await mass_delete(console)
    await sign_in(console, "heidi")
    data = dict(form)
    if data.get("csrf") == "ok":
        data["csrf"] = await csrf_of(console, QUEUE)
    sent = {"no-csrf": origin(console), "origin": origin(console), "evil-origin": {"Origin": "https://evil.example"}}
    resp = await console.post("/_gw/console/users/grace/lift", data=data, headers=sent[headers], allow_redirects=False)
    assert resp.status == 403 and reason in await resp.text()
    assert await refused(console)


async def test_a_lift_needs_a_note(console):
    await mass_delete(console)
    await sign_in(console, "heidi")
    resp = await lift(console, "grace", QUEUE, action="block", note="  ", back="alerts")
    assert resp.status == 400 and "needs a note" in await resp.text()
    assert await refused(console)


async def test_only_the_lift_roles_may_lift_and_nobody_their_own_block(redis_url, aiohttp_client, crm, tmp_path, clock):
    # dave (sales_manager) may use this console but is not in lift_roles; grace (admin) is blocked herself
    config = {"roles": ["security_analyst", "admin", "sales_manager"], "lift_roles": ["security_analyst", "admin"]}
    console = await build_console(aiohttp_client, crm, tmp_path, clock, redis_url, console=config)  # the settings
    await mass_delete(console)
    await sign_in(console, "dave")
    html = await (await console.get(QUEUE)).text()
    assert 'data-action="block"' in html and "/lift" not in html  # shown, no form
    resp = await lift(console, "grace", QUEUE, action="block", note="I want to", back="alerts")
    assert resp.status == 403 and "role-unauthorized" in await resp.text()
    assert await refused(console)
    grace = auth("grace")  # one token: the CSRF token is bound to the credential
    page = await console.get(QUEUE, headers=grace)
    assert "your own: another analyst lifts it" in await page.text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    resp = await console.post(
        "/_gw/console/users/grace/lift",
        data={"csrf": csrf, "note": "mine", "action": "block"},
        headers={**grace, **origin(console)},
        allow_redirects=False,
    )
    assert resp.status == 403 and "own-block" in await resp.text()
    assert await refused(console)


async def test_false_positive_with_the_box_checked_lifts_the_block(console):
    alert_id = await mass_delete(console)
    await sign_in(console, "heidi")
    csrf = await csrf_of(console, f"/_gw/console/alerts/{alert_id}")
    resp = await console.post(
        f"/_gw/console/alerts/{alert_id}/action",
        data={"csrf": csrf, "action": "false_positive", "lift": "on", "note": "test data clean-up"},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=false_positive&lifted=block")
    assert not await refused(console)
    alert = await console.gw.alerts.get(alert_id)
    assert alert.status == "false_positive"
    assert [h.action for h in alert.history[-3:]] == ["false_positive", "note", "lift_block"]
    assert alert.history[-1].actor == "heidi"


async def test_false_positive_without_the_box_leaves_the_block(console):
    alert_id = await mass_delete(console)
    await sign_in(console, "heidi")
    csrf = await csrf_of(console, f"/_gw/console/alerts/{alert_id}")
    resp = await console.post(
        f"/_gw/console/alerts/{alert_id}/action",
        data={"csrf": csrf, "action": "false_positive", "note": "benign, keep the block"},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 303 and "lifted" not in resp.headers["Location"]
    assert await refused(console)


async def test_a_lift_in_one_gateways_console_ends_the_refusal_on_a_second_gateway(
    console, redis_url, aiohttp_client, crm, tmp_path, clock
):
    (tmp_path / "two").mkdir()
    two = await build_console(aiohttp_client, crm, tmp_path / "two", clock, redis_url)
    await mass_delete(console)
    assert await refused(two)  # the block reached the second gateway (pub/sub, or its start-up reload)
    await sign_in(console, "heidi")
    resp = await lift(console, "grace", QUEUE, action="block", note="planned purge", back="alerts")
    assert resp.status == 303
    import asyncio

    for _ in range(100):
        if not await refused(two):
            break
        await asyncio.sleep(0.02)
    assert not await refused(two)
    html = await (await two.get(QUEUE, headers=auth("heidi"))).text()
    assert 'data-action="block"' not in html  # and its queue agrees
