"""The console's access-requests page over HTTP: a manager asks for a report and another approver
decides (never the asker), the grant shows as active with a revoke form, revoking ends it, CSRF, a
sales rep stays out of the console, an audit line per change."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from tests.console.conftest import CSRF, build_console, origin, sign_in
from tests.integration.conftest import auth

PAGE = "/_gw/console/access"
EXPORT = "/api/customers/export.csv"


@pytest.fixture
async def console(redis_url, aiohttp_client, crm, tmp_path, clock):
    return await build_console(aiohttp_client, crm, tmp_path, clock, redis_url)


async def page_csrf(console) -> tuple[str, str]:
    page = await console.get(PAGE)
    html = await page.text()
    assert page.status == 200, html
    return html, CSRF.search(html).group(1)


async def post(console, path: str, data: dict, status: int = 303):
    resp = await console.post(path, data=data, headers=origin(console), allow_redirects=False)
    assert resp.status == status, await resp.text()
    return resp


def audit(console) -> list[dict]:
    return [orjson.loads(x) for x in console.gw.audit.path.read_bytes().splitlines() if x.strip()]


async def test_a_manager_asks_for_a_report_an_admin_approves_and_the_manager_revokes(console, clock):
    await sign_in(console, "erin")
    html, csrf = await page_csrf(console)
    assert '<option value="carol">carol</option>' in html  # erin manages carol
    until = (clock() + timedelta(hours=2)).isoformat()
    resp = await post(
        console,
        PAGE,
        {
            "csrf": csrf,
            "user": "carol",
            "operations": "customers.export",
            "data_scope": "own",
            "until": until,
            "reason": "review SEC-3",
        },
    )
    request_id = resp.headers["Location"].split("id=")[1]
    html, csrf = await page_csrf(console)
    assert request_id in html and f"{PAGE}/{request_id}/approve" not in html  # never the asker
    await post(console, f"{PAGE}/{request_id}/approve", {"csrf": csrf, "note": "mine"}, status=403)
    assert (await console.get(EXPORT, headers=auth("carol"))).status == 403

    console.session.cookie_jar.clear()
    await sign_in(console, "grace")  # an admin: an approver role
    html, csrf = await page_csrf(console)
    assert f'action="{PAGE}/{request_id}/approve"' in html
    await post(console, f"{PAGE}/{request_id}/approve", {"csrf": "forged", "note": "x"}, status=403)  # CSRF
    await post(console, f"{PAGE}/{request_id}/approve", {"csrf": csrf, "note": "ok"})
    assert (await console.get(EXPORT, headers=auth("carol"))).status == 200
    html, _ = await page_csrf(console)
    assert 'class="access-request active"' in html and f"{PAGE}/{request_id}/revoke" in html

    console.session.cookie_jar.clear()
    await sign_in(console, "erin")
    _, csrf = await page_csrf(console)
    await post(console, f"{PAGE}/{request_id}/revoke", {"csrf": csrf, "note": "no longer needed"})
    assert (await console.get(EXPORT, headers=auth("carol"))).status == 403
    events = [(r["event"], r["actor"], r["via"]) for r in audit(console) if r.get("kind") == "access"]
    assert events == [
        ("access.requested", "erin", "console"),
        ("access.approved", "grace", "console"),
        ("access.revoked", "erin", "console"),
    ]


async def test_a_sales_rep_stays_out_of_the_console(console):
    resp = await console.get(PAGE, headers=auth("alice"), allow_redirects=False)
    assert resp.status == 403
