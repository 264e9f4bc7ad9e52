"""Four-eyes approvals in a real headless browser (Debian's chromium driven by Playwright, like
tests/console/test_browser.py): a sales manager's bulk delete is refused, another sales manager
approves it on the console's approvals page, the request then passes once; the requester sees
their own request without any button. These tests FAIL (never skip) if chromium cannot start."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request

import pytest

from democrm.app import create_app as create_crm
from gateway.app import GATEWAY, create_app
from gateway.identity.devkeys import mint_token
from gateway.rulestore import RuleStore
from tests.approvals.conftest import add_approval_rules
from tests.conftest import RULES
from tests.console.live import LiveGateway, chromium, running
from tests.console.test_browser import shoot
from tests.integration.conftest import CRM_TOKEN, gateway_settings

pytestmark = pytest.mark.slow

BULK = "/api/customers/bulk-delete"


class ApprovalsLive(LiveGateway):
    """The live gateway of the console's browser tests, with the four-eyes rules added."""

    async def _start(self) -> None:
        rules = self.base_dir / "rules"
        shutil.copytree(RULES, rules)
        add_approval_rules(rules)
        crm_url = await self._serve(create_crm(service_token=CRM_TOKEN))
        settings = gateway_settings(crm_url, self.base_dir, rules, redis_url=self.redis_url)
        store, errors = RuleStore.open(rules)
        assert store is not None, errors
        app = create_app(settings, store)  # the console is registered by create_app
        self.gw = app[GATEWAY]
        self.url = await self._serve(app)


@pytest.fixture(scope="module")
def live(redis_server, tmp_path_factory):
    with running(ApprovalsLive, redis_server, tmp_path_factory.mktemp("approvals-live")) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def tab(browser, live):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live.url)
    context.set_default_timeout(10_000)
    return context, context.new_page()


def call(live, method: str, path: str, user: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{live.url}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {mint_token(user)}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def sign_in_to_approvals(page, user: str) -> None:
    page.goto("/_gw/console/approvals")
    assert "/_gw/console/login" in page.url  # not signed in: the login page, then back here
    page.fill("#token", mint_token(user))
    page.click("button[type=submit]")
    page.wait_for_url("**/_gw/console/approvals")


def test_a_bulk_delete_is_approved_in_the_console_by_another_manager_and_passes_once(browser, live):
    status, listing = call(live, "GET", "/api/customers?page_size=200", "dave")
    ids = [r["id"] for r in listing["data"]][:2]
    status, body = call(live, "POST", BULK, "dave", {"ids": ids})
    assert status == 403 and body["reason"] == "approval-required", body
    approval_id = body["approval_id"]

    # The requester sees their own request, and no button to decide it.
    context, page = tab(browser, live)
    sign_in_to_approvals(page, "dave")
    assert page.locator(f"#own tr[data-id='{approval_id}']").is_visible()
    assert page.locator("form.decide").count() == 0
    assert page.locator("#to-decide").get_by_text("Nothing waits for you.").is_visible()
    shoot(page, "approvals-requester")
    context.close()

    # Another sales manager approves it, with a note.
    context, page = tab(browser, live)
    sign_in_to_approvals(page, "erin")
    row = page.locator(f"#to-decide tr[data-id='{approval_id}']")
    assert "dave" in row.inner_text() and BULK in row.inner_text()
    shoot(page, "approvals-approver")
    row.locator("form.approve input[name=note]").fill("month-end clean-up, ticket OPS-12")
    row.locator("form.approve button").click()
    page.wait_for_url("**done=approved**")
    assert page.locator("#done").is_visible()
    decided = page.locator(f"#decided tr[data-id='{approval_id}']")
    assert decided.get_attribute("data-status") == "approved"
    assert "month-end clean-up, ticket OPS-12" in decided.inner_text()
    assert page.locator("nav a", has_text="Approvals").is_visible()
    context.close()

    # The same request now passes, once.
    status, body = call(live, "POST", BULK, "dave", {"ids": ids})
    assert status == 200 and body["deleted"] == 2, body
    assert live.call(live.gw.approvals.get(approval_id)).status == "consumed"
    status, body = call(live, "POST", BULK, "dave", {"ids": ids})
    assert status != 200  # the records are gone (404) and the approval is used up
    lines = [json.loads(x) for x in live.gw.audit.path.read_text().splitlines() if x.strip()]
    approvals = [(r.get("event"), r.get("actor")) for r in lines if r.get("kind") == "approval"]
    assert approvals == [("approval.approved", "erin")]
    assert [r["approval"]["state"] for r in lines if r.get("approval")] == ["required", "consumed"]


def test_a_rejected_request_never_passes(browser, live):
    status, listing = call(live, "GET", "/api/customers?page_size=200", "dave")
    ids = [r["id"] for r in listing["data"]][:1]
    status, body = call(live, "POST", BULK, "dave", {"ids": ids})
    approval_id = body["approval_id"]
    context, page = tab(browser, live)
    sign_in_to_approvals(page, "erin")
    row = page.locator(f"#to-decide tr[data-id='{approval_id}']")
    row.locator("form.reject input[name=note]").fill("not without a ticket")
    row.locator("form.reject button").click()
    page.wait_for_url("**done=rejected**")
    assert page.locator(f"#decided tr[data-id='{approval_id}']").get_attribute("data-status") == "rejected"
    context.close()
    status, body = call(live, "POST", BULK, "dave", {"ids": ids})
    assert (status, body["reason"], body["approval_id"]) == (403, "approval-rejected", approval_id)
