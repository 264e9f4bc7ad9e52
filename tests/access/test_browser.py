"""Access requests in a real headless browser (chromium via Playwright, like the approvals' browser
test): carol (a rep) asks with the API, her manager erin approves on the console's Access page,
carol exports, erin revokes on the page and carol's next export is refused. FAILS (never skips) if
chromium cannot start."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from gateway.identity.devkeys import mint_token
from tests.approvals.test_browser import ApprovalsLive, call, tab
from tests.console.live import chromium, running
from tests.console.test_browser import shoot

pytestmark = pytest.mark.slow

EXPORT = "/api/customers/export.csv"


@pytest.fixture(scope="module")
def live(redis_server, tmp_path_factory):
    with running(ApprovalsLive, redis_server, tmp_path_factory.mktemp("access-live")) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def export_status(live) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{live.url}{EXPORT}", headers={"Authorization": f"Bearer {mint_token('carol')}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_manager_approves_and_revokes_an_access_request_in_the_console(browser, live):
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    status, body = call(
        live,
        "POST",
        "/_gw/api/access-requests",
        "carol",
        {"operations": ["customers.export"], "until": until, "reason": "pipeline review SEC-11"},
    )
    assert status == 201, body
    request_id = body["id"]
    assert export_status(live) == 403

    context, page = tab(browser, live)
    page.goto("/_gw/console/access")
    page.fill("#token", mint_token("erin"))
    page.click("button[type=submit]")
    page.goto("/_gw/console/access")
    row = page.locator(f"#to-decide tr[data-id='{request_id}']")
    assert "carol" in row.inner_text() and "customers.export" in row.inner_text()
    shoot(page, "access-approver")
    row.locator("form.approve input[name=note]").fill("ok for the review")
    row.locator("form.approve button").click()
    page.wait_for_url("**done=approved**")
    assert page.locator(f"#active tr[data-id='{request_id}']").is_visible()
    assert export_status(live) == 200

    page.locator(f"#active tr[data-id='{request_id}'] form.revoke button").click()
    page.wait_for_url("**done=revoked**")
    assert page.locator(f"#others tr[data-id='{request_id}']").get_attribute("data-status") == "revoked"
    context.close()
    assert export_status(live) == 403
    lines = [json.loads(x) for x in live.gw.audit.path.read_text().splitlines() if x.strip()]
    assert [(r["event"], r["actor"], r["via"]) for r in lines if r.get("kind") == "access"] == [
        ("access.requested", "carol", "api"),
        ("access.approved", "erin", "console"),
        ("access.revoked", "erin", "console"),
    ]
