"""The console in a real headless browser: Debian's chromium (/usr/bin/chromium) driven by Playwright.

One live gateway and one browser for the module. If chromium cannot start, these tests FAIL (they
never skip): the acceptance of issue 4 is that they run. Screenshots of the queue, an alert and the
rules page go to artifacts/screenshots/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from gateway.alerts import journal_path
from gateway.identity.devkeys import mint_token
from tests.conftest import REPO
from tests.console.conftest import alert_kwargs, evidence

pytestmark = pytest.mark.slow

SHOTS = REPO / "artifacts" / "screenshots"
XSS_SUMMARY = "<script>window.__xss = 1</script> exported <b>bold</b>"
XSS_PATH = "/api/customers/<script>window.__xss=2</script>"
XSS_AGENT = '<img src=x onerror="window.__xss=3">Mozilla/5.0'


def sign_in(page, user: str) -> None:
    page.goto("/_gw/console/alerts")
    assert "/_gw/console/login" in page.url  # not signed in: sent to the login page
    page.fill("#token", mint_token(user))
    page.click("button[type=submit]")


def shoot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


async def view_records_in_order(base: str, user: str, ids, agent: str = "crm-sync/2.1") -> list[int]:
    headers = {"Authorization": f"Bearer {mint_token(user)}", "User-Agent": agent}
    async with aiohttp.ClientSession(headers=headers) as session:
        statuses = []
        for i in ids:
            async with session.get(f"{base}/api/customers/{i}") as resp:
                statuses.append(resp.status)
        return statuses


def test_analyst_triages_an_alert_raised_by_simulated_traffic(live, page):
    # Simulated traffic through the real path: grace walks customer ids one by one.
    statuses = live.call(view_records_in_order(live.url, "grace", range(1, 20)))
    assert set(statuses) == {200}
    live.call(live.gw.signals.drain())
    alerts = live.call(live.gw.alerts.list(user="grace"))
    assert [a.type for a in alerts] == ["enumeration-sequential"]
    alert = alerts[0]

    sign_in(page, "heidi")
    page.wait_for_url("**/_gw/console/alerts")
    row = page.locator(f"tr[data-href$='/alerts/{alert.id}']")
    assert "grace" in row.inner_text() and "open" in row.inner_text()
    assert page.locator(".count.level-high .n").inner_text() == "1"
    shoot(page, "queue")

    row.locator("td.summary a").click()
    page.wait_for_url(f"**/alerts/{alert.id}")
    bars = page.locator("svg.chart rect.bar")
    assert bars.count() == 14
    assert int(page.locator("svg.chart rect.bar-alert").get_attribute("data-value")) >= 16
    assert page.locator("table.data td.mono", has_text="/api/customers/19").count() == 1  # requests behind it
    shoot(page, "alert-detail")

    page.fill("#note", "Admin checking the import: agreed with IT")
    page.click("button[value=false_positive]")
    page.wait_for_url("**done=false_positive")
    assert page.locator(".head .status-false_positive").is_visible()
    assert page.get_by_text("Admin checking the import: agreed with IT").is_visible()

    # The CLI sees it (a separate process: Playwright's sync API owns this thread's event loop) ...
    journal = journal_path(live.gw.settings.alerts, live.gw.settings.base_dir)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "alerts",
            "show",
            alert.id,
            "--journal",
            str(journal),
            "--redis-url",
            live.redis_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 0, cli.stderr
    shown = json.loads(cli.stdout)
    assert shown["status"] == "false_positive"
    assert shown["history"][-2]["actor"] == "heidi"
    # ... and so does the JSON API.
    request = urllib.request.Request(
        f"{live.url}/_gw/api/alerts/{alert.id}", headers={"Authorization": f"Bearer {mint_token('heidi')}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        api = json.load(resp)
    assert api["status"] == "false_positive"
    assert api["notes"][-1] == {
        "time": api["notes"][-1]["time"],
        "actor": "heidi",
        "text": "Admin checking the import: agreed with IT",
    }

    # a fixed Tuesday morning: office hours whatever the wall clock says when the suite runs
    page.goto("/_gw/console/rules?user=alice&method=GET&path=/api/customers/1&ip=10.1.2.3&at=2026-03-03T10:00")
    assert page.locator("table.trace").is_visible()
    shoot(page, "rules")
    assert page.locator(".verdict .effect-allow").is_visible()  # alice may view her own customer 1
    assert page.locator("table.trace tr.fired").count() >= 1  # the allowing rule, with its criteria


def test_user_controlled_text_is_shown_as_text_never_run(live, page):
    live.call(view_records_in_order(live.url, "carol", [1], agent=XSS_AGENT))
    alert_id = live.call(
        live.gw.alerts.raise_alert(
            **alert_kwargs(
                user="carol",
                summary=XSS_SUMMARY,
                window="5m",
                evidence=evidence(
                    timespan="5m",
                    request={"path": XSS_PATH, "user_agent": XSS_AGENT},
                    recent_requests=[{"path": XSS_PATH, "user_agent": XSS_AGENT}],
                ),
            )
        )
    )
    sign_in(page, "heidi")
    page.wait_for_url("**/_gw/console/alerts")
    assert page.get_by_text(XSS_SUMMARY).first.is_visible()
    page.goto(f"/_gw/console/alerts/{alert_id}")
    page.click("details summary")  # all evidence, with the path
    assert page.get_by_text(XSS_SUMMARY).is_visible()
    assert page.locator("pre.evidence").inner_text().count("<script>window.__xss=2</script>") == 1
    assert page.locator(f"td.ua[title='{XSS_AGENT}']").count() >= 1  # the audit line's user agent, as text
    assert page.evaluate("window.__xss") is None
    assert page.locator("main script, main img, main b").count() == 0
    assert page.dialogs == []


def test_a_sales_rep_cannot_sign_in(page):
    sign_in(page, "alice")
    assert page.locator(".error").inner_text().startswith("This account may not use the console")
    response = page.goto("/_gw/console/alerts")
    assert "/_gw/console/login" in page.url and response.status == 200  # no session was created
