"""Issue 16 in a real headless browser (Debian's chromium driven by Playwright, as test_browser.py):
an incident grouping a user's alerts, a bulk resolve of 20 alerts with a verdict, lifting a block
from its alert (the user's next request passes), suspending a user (their next request is refused
``user-suspended``), the dashboard charting real traffic. Screenshots go to artifacts/screenshots/.

One live gateway for the module (its own flushed Redis); each test uses its own users.
"""

from __future__ import annotations

import aiohttp
import pytest

from gateway.identity.devkeys import mint_token
from tests.console.conftest import alert_kwargs
from tests.console.test_browser import shoot, sign_in

pytestmark = pytest.mark.slow


async def request(base: str, user: str, method: str = "GET", path: str = "/api/customers", **kw) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {mint_token(user, mfa=kw.pop('mfa', False))}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.request(method, f"{base}{path}", **kw) as resp:
            body = await resp.json(content_type=None) if resp.status >= 400 else {}
            return resp.status, (body or {}).get("reason", "")


def test_a_users_alerts_are_grouped_into_one_incident_and_triaged_together(live, page):
    ids = [live.call(live.gw.alerts.raise_alert(**alert_kwargs(user="erin", window=f"w{i}"))) for i in range(3)]
    live.call(
        live.gw.alerts.raise_alert(**alert_kwargs(user="erin", window="crit", level="critical", type="mass-delete"))
    )
    sign_in(page, "heidi")
    page.wait_for_url("**/_gw/console/alerts")
    page.click(".view-toggle a[href$='/incidents']")
    page.wait_for_url("**/_gw/console/incidents")
    row = page.locator("tr.incident", has_text="erin")
    assert row.count() == 1 and "critical" in row.inner_text()
    assert row.locator("a.incident-link").inner_text() == "4"
    shoot(page, "incidents")
    row.locator("a.incident-link").click()
    page.wait_for_url("**/_gw/console/incidents/*")
    assert page.locator("dd.incident-count").inner_text() == "4"
    assert page.locator("table.timeline tbody tr").count() == 4  # raised x 4
    page.select_option("form.incident-triage select.triage-action", "ack")
    page.click("form.incident-triage button[type=submit]")
    page.wait_for_url("**done=*")
    assert page.get_by_text("4 alert(s) updated").is_visible()
    assert page.locator("table.timeline tbody tr").count() == 12  # + (acknowledge, assign to self) x 4
    shoot(page, "incident")
    assert {live.call(live.gw.alerts.get(i)).status for i in ids} == {"acknowledged"}


def test_bulk_resolve_of_twenty_alerts_with_a_verdict(live, page):
    ids = [
        live.call(live.gw.alerts.raise_alert(**alert_kwargs(user="ivan", window=f"b{i}", level="low")))
        for i in range(20)
    ]
    sign_in(page, "heidi")
    page.wait_for_url("**/_gw/console/alerts")
    page.fill("input[name=user]", "ivan")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**user=ivan*")
    assert page.locator("input.select").count() == 20
    page.check("#select-all")
    assert page.locator("#bulk-count").inner_text() == "20 selected"
    page.select_option("#bulk-action", "resolve")
    page.select_option("#bulk-verdict", "benign_true_positive")
    page.select_option("#bulk-determination", "test")
    page.fill("#bulk-note", "red-team exercise RT-7")
    shoot(page, "bulk-selected")
    page.click("#bulk button[type=submit]")
    page.wait_for_url("**done=*")
    assert page.get_by_text("20 alert(s) updated").is_visible()
    assert page.locator("input.select").count() == 0  # the queue shows open alerts: none left for ivan
    for alert in (live.call(live.gw.alerts.get(i)) for i in ids):
        assert (alert.status, alert.verdict, alert.determination) == ("resolved", "benign_true_positive", "test")
        assert alert.history[-1].actor == "heidi"
    shoot(page, "bulk-done")


def test_the_queue_is_keyboard_friendly(live, page):
    live.call(live.gw.alerts.raise_alert(**alert_kwargs(user="bob", window="kbd")))
    sign_in(page, "heidi")
    page.wait_for_url("**/_gw/console/alerts")
    page.keyboard.press("j")
    focused = page.locator("tr.kbd-focus")
    assert focused.count() == 1
    page.keyboard.press("x")
    assert focused.locator("input.select").is_checked()
    href = focused.get_attribute("data-href")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{href}")


def test_the_dashboard_charts_real_traffic(live, page):
    for _ in range(2):
        assert live.call(request(live.url, "grace", path="/api/customers/export.csv", mfa=True))[0] == 200
    assert live.call(request(live.url, "alice", path="/api/no-such-operation"))[0] == 403  # a denial
    live.call(live.gw.signals.drain())
    sign_in(page, "heidi")
    page.wait_for_url("**/_gw/console/alerts")
    page.click("nav a[href$='/dashboard']")
    page.wait_for_url("**/_gw/console/dashboard")
    exporters = page.locator("#top-exporters rect.bar[data-label=grace]")
    assert int(exporters.get_attribute("data-value")) > 0
    assert page.locator("#exported-per-day rect.bar").count() == 14
    assert page.locator("#denials-by-rule rect.bar").count() >= 1
    assert page.locator("#alerts-per-day rect.seg").count() >= 1
    assert page.locator("#riskiest-users rect.bar").count() >= 1
    shoot(page, "dashboard")
    page.select_option("select[name=team]", "east")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**team=east*")
    assert page.locator("#top-exporters rect.bar[data-label=grace]").count() == 0


def test_lifting_a_block_from_its_alert_lets_the_next_request_through(live, page):
    status, _ = live.call(
        request(live.url, "grace", "POST", "/api/customers/bulk-delete", json={"ids": list(range(1, 26))})
    )
    assert status == 200
    live.call(live.gw.signals.drain())
    assert live.call(request(live.url, "grace", path="/api/customers/40")) == (403, "anomaly-block")
    (alert,) = [a for a in live.call(live.gw.alerts.list(user="grace")) if a.type == "mass-delete"]
    sign_in(page, "heidi")
    page.wait_for_url("**/_gw/console/alerts")
    page.goto(f"/_gw/console/alerts/{alert.id}")
    form = page.locator("form.lift-from-here")
    assert form.count() == 1
    form.locator("input[name=note]").fill("approved clean-up, ticket 4711")
    shoot(page, "alert-lift")
    form.locator("button.lift-button").click()
    page.wait_for_url(f"**/alerts/{alert.id}?lifted=grace")
    assert live.call(request(live.url, "grace", path="/api/customers/40"))[0] == 200
    assert page.locator("form.lift-from-here").count() == 0
    assert page.get_by_text("lift block").first.is_visible()  # the alert's history


def test_suspending_a_user_refuses_their_next_request(live, page):
    before = live.call(request(live.url, "frank"))
    assert before[1] != "user-suspended"
    sign_in(page, "heidi")
    page.wait_for_url("**/_gw/console/alerts")
    page.goto("/_gw/console/governance")
    page.fill("input[name=user]", "frank")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/users/frank/govern")
    page.select_option("select.govern-action", "suspend")
    page.fill("input.govern-note", "laptop stolen, ticket 9001")
    page.click("form.govern button[type=submit]")
    page.wait_for_url("**/users/frank/govern?done=*")
    assert page.locator("h1 .badge.suspended").is_visible()
    assert live.call(request(live.url, "frank")) == (403, "user-suspended")
    page.goto("/_gw/console/governance")
    assert page.locator("tr.suspension[data-user=frank]").is_visible()
    shoot(page, "governance")
    page.goto("/_gw/console/users/frank/govern")
    page.select_option("select.govern-action", "unsuspend")
    page.fill("input.govern-note", "laptop found")
    page.click("form.govern button[type=submit]")
    page.wait_for_url("**done=unsuspend*")
    assert live.call(request(live.url, "frank")) == before


def test_a_detector_alert_shows_the_own_and_peer_usual_and_the_days_that_joined_it(live, page):
    from tests.console.test_alert_evidence import detector_kwargs, feature

    features = {
        "sequential_views": feature(300.0, 0.71, {"usual": 0.0, "max": 2.0, "days": 21}, 1.5),
        "distinct_records": feature(310.0, 0.29, None, 35.0),
    }
    ids = {
        live.call(live.gw.alerts.raise_alert(**detector_kwargs(features, user="judy", window=f"2026-03-{d:02d}")))
        for d in (9, 10, 11)
    }
    assert len(ids) == 1  # the echo days joined the first day's alert
    sign_in(page, "heidi")
    page.wait_for_url("**/_gw/console/alerts")
    assert page.locator("tr", has_text="judy").locator(".recurred").inner_text() == "+2"
    page.goto(f"/_gw/console/alerts/{ids.pop()}")
    why = page.locator("table.why")
    assert why.locator("th").all_inner_texts()[:4] == ["Feature", "Observed", "Own usual", "Peer usual"]
    assert why.locator("tr", has_text="sequential_views").locator("td.own-usual").inner_text() == "0 max 2, 21 d"
    assert why.locator("tr", has_text="distinct_records").locator("td.own-usual").inner_text() == "no history"
    assert page.locator("ul.drivers li").count() == 2
    assert page.locator("dd.recurred").inner_text().startswith("2 later windows joined it: 2026-03-10, 2026-03-11")
    shoot(page, "alert-detector")
