"""The approvals page of the console over HTTP (the browser test drives it in chromium): who sees
what, CSRF, nobody decides their own request, an audit line per decision."""

from __future__ import annotations

import orjson
import pytest

from gateway.identity.devkeys import mint_token
from tests.console.conftest import CSRF, build_console, csrf_of, origin, sign_in
from tests.integration.conftest import auth

PAGE = "/_gw/console/approvals"
BULK = "/api/customers/bulk-delete"


@pytest.fixture
async def console(redis_url, aiohttp_client, crm, tmp_path, clock, approval_rules):
    return await build_console(aiohttp_client, crm, tmp_path, clock, redis_url, rules=approval_rules)


async def ask(console, ids=(1,)) -> str:
    resp = await console.post(BULK, json={"ids": list(ids)}, headers=auth("dave"))
    body = await resp.json()
    assert resp.status == 403 and body["reason"] == "approval-required", body
    return body["approval_id"]


async def east(console) -> list[int]:
    resp = await console.get("/api/customers?page_size=200", headers=auth("dave"))
    return [r["id"] for r in (await resp.json())["data"]]


def audit(console) -> list[dict]:
    return [orjson.loads(x) for x in console.gw.audit.path.read_bytes().splitlines() if x.strip()]


async def test_another_manager_sees_the_request_with_forms_and_approves_it(console):
    ids = (await east(console))[:1]
    approval_id = await ask(console, ids)
    await sign_in(console, "erin")
    page = await console.get(PAGE)
    html = await page.text()
    assert page.status == 200 and approval_id in html
    assert f'action="/_gw/console/approvals/{approval_id}/approve"' in html
    csrf = CSRF.search(html).group(1)
    resp = await console.post(
        f"{PAGE}/{approval_id}/approve",
        data={"csrf": csrf, "note": "ticket OPS-7"},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    line = [r for r in audit(console) if r.get("kind") == "approval"][-1]
    assert {k: line[k] for k in ("event", "approval_id", "actor", "requester", "note", "via")} == {
        "event": "approval.approved",
        "approval_id": approval_id,
        "actor": "erin",
        "requester": "dave",
        "note": "ticket OPS-7",
        "via": "console",
    }
    assert "user" not in line  # not a request of erin's for the behaviour counters
    resp = await console.post(BULK, json={"ids": ids}, headers=auth("dave"))
    assert resp.status == 200, await resp.text()


async def test_the_requester_sees_their_own_request_without_buttons_and_cannot_decide_it(console):
    approval_id = await ask(console)
    await sign_in(console, "dave")
    html = await (await console.get(PAGE)).text()
    own = html[html.index('id="own"') : html.index('id="decided"')]
    assert approval_id in own
    assert "/approve" not in html and "/reject" not in html
    csrf = await csrf_of(console, PAGE)
    for verb in ("approve", "reject"):  # a forged POST is refused by the store, not only hidden
        resp = await console.post(
            f"{PAGE}/{approval_id}/{verb}", data={"csrf": csrf, "note": "mine"}, headers=origin(console)
        )
        assert resp.status == 403 and "own-request" in await resp.text()
    assert (await console.gw.approvals.get(approval_id)).status == "pending"


async def test_decisions_need_the_csrf_token_and_the_console_origin(console):
    approval_id = await ask(console)
    await sign_in(console, "erin")
    resp = await console.post(f"{PAGE}/{approval_id}/approve", data={"note": "x"}, headers=origin(console))
    assert resp.status == 403 and "csrf-failed" in await resp.text()
    csrf = await csrf_of(console, PAGE)
    resp = await console.post(
        f"{PAGE}/{approval_id}/approve", data={"csrf": csrf, "note": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert resp.status == 403 and "csrf-failed" in await resp.text()
    assert (await console.gw.approvals.get(approval_id)).status == "pending"


async def test_who_may_sign_in_and_what_an_analyst_sees(console):
    approval_id = await ask(console)
    page = await console.get("/_gw/console/login")
    token = CSRF.search(await page.text()).group(1)
    resp = await console.post(
        "/_gw/console/login",
        data={"csrf": token, "token": mint_token("alice"), "next": ""},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 403  # a rep is nobody's approver here: no console at all
    await sign_in(console, "heidi")  # an analyst: the page, but nothing to decide
    html = await (await console.get(PAGE)).text()
    assert approval_id not in html
    csrf = await csrf_of(console, PAGE)
    resp = await console.post(
        f"{PAGE}/{approval_id}/approve", data={"csrf": csrf, "note": "x"}, headers=origin(console)
    )
    assert resp.status == 403 and "not-an-approver" in await resp.text()


async def test_a_manager_without_a_console_role_reaches_only_the_approvals_page(console):
    await sign_in(console, "erin")
    assert (await console.get(PAGE)).status == 200
    assert (await console.get("/_gw/console/alerts")).status == 403
