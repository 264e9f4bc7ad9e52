"""The audit pages in chromium (Playwright, Debian's /usr/bin/chromium, as tests/console/test_browser.py):
the explain form submits without a script error, the decisions search pages through the index and
links its CSV export, and browsing the console (the browser's own favicon requests included) writes
no line to the audit log."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.identity.devkeys import mint_token
from tests.conftest import REPO

pytestmark = pytest.mark.slow
SHOTS = REPO / "artifacts" / "screenshots"


def sign_in(page, user: str) -> None:
    page.goto("/_gw/console/alerts")
    page.fill("#token", mint_token(user))
    page.click("button[type=submit]")
    page.wait_for_url("**/_gw/console/alerts")


async def requests_of(base: str, user: str, count: int) -> list[int]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {mint_token(user)}"}) as session:
        statuses = []
        for i in range(count):
            async with session.get(f"{base}/api/customers/{i + 1}") as resp:
                statuses.append(resp.status)
        return statuses


def test_the_explain_form_submits_without_a_script_error(live, page):
    sign_in(page, "heidi")
    page.goto("/_gw/console/rules")
    form = page.locator("form[action='/_gw/console/rules']")
    form.locator("input[name=user]").fill("alice")
    form.locator("select[name=method]").select_option("GET")
    form.locator("input[name=path]").fill("/api/admin/users")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/_gw/console/rules?user=alice*")
    assert page.locator("p.verdict .effect-deny").count() == 1
    assert page.locator("table.trace").count() >= 1
    assert page.errors == []


def test_browsing_the_console_writes_no_audit_line(live, page):
    live.call(requests_of(live.url, "alice", 3))
    audit = live.gw.audit.path
    before = audit.read_bytes()
    sign_in(page, "heidi")
    for path in ("/_gw/console/decisions?user=alice", "/_gw/console/rules", "/_gw/console/users/alice"):
        page.goto(path)  # chromium asks for /favicon.ico on its own as well
    page.goto("/_gw/console/no-such-page")
    assert page.request.get("/favicon.ico").status == 204
    assert audit.read_bytes() == before
    assert page.errors == []


def test_decisions_page_older_and_export(live, page):
    statuses = live.call(requests_of(live.url, "bob", 105))  # more than a page (100)
    assert len(statuses) == 105
    sign_in(page, "heidi")
    page.goto("/_gw/console/decisions?user=bob")
    assert page.locator("table.data tr[data-href]").count() == 100
    assert page.get_by_text("Answered by the audit index").count() == 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "decisions-index.png"), full_page=True)
    page.get_by_role("link", name="Older »").click()
    page.wait_for_url("**before=*")
    assert page.locator("table.data tr[data-href]").count() >= 5
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = download.value.path().read_text()
    assert text.startswith("time,decision_id,user,") and text.count("\n") >= 106
    assert page.errors == []
