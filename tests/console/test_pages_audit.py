"""Pages on the audit log and the rules: decisions, one decision, a user, the rules page and explain."""

from __future__ import annotations

import re

from tests.console.conftest import build_console
from tests.integration.conftest import auth

HEIDI = auth("heidi")


async def traffic(console):
    """Real requests through the gateway: an allowed read, a denial, a shadow 'would deny'."""
    assert (await console.get("/api/customers/1", headers=auth("alice", ip="10.1.2.3"))).status in (200, 403, 404)
    assert (await console.get("/api/admin/users", headers=auth("alice", ip="10.1.2.3"))).status == 403
    assert (await console.get("/api/customers?page_size=100", headers=auth("frank", ip="10.1.2.3"))).status == 200


def decision_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-href="/_gw/console/decisions/([^"]+)"', html)


async def test_decisions_are_searched_by_user_and_effect_newest_first(console):
    await traffic(console)
    html = await (await console.get("/_gw/console/decisions?user=alice&effect=deny", headers=HEIDI)).text()
    ids = decision_ids(html)
    assert len(ids) >= 1
    assert "/api/admin/users" in html and "page_size" not in html


async def test_the_decisions_api_answers_json(console):
    await traffic(console)
    body = await (await console.get("/_gw/console/api/decisions?operation=customers.*", headers=HEIDI)).json()
    assert {d["user"] for d in body["decisions"]} == {"alice", "frank"}
    assert body["truncated"] is False


async def test_one_decision_shows_every_rule_and_criterion_with_its_reason(console):
    await traffic(console)
    html = await (await console.get("/_gw/console/decisions?user=alice&effect=deny", headers=HEIDI)).text()
    page = await console.get(f"/_gw/console/decisions/{decision_ids(html)[0]}", headers=HEIDI)
    text = await page.text()
    assert page.status == 200
    assert 'class="data compact trace"' in text
    assert "role-unauthorized" in text  # a criterion's reason from the re-evaluation
    api = await (await console.get(f"/_gw/console/api/decisions/{decision_ids(html)[0]}", headers=HEIDI)).json()
    assert api["decision"]["effect"] == "deny" and api["reevaluated"]["trace"]


async def test_an_unknown_decision_is_404(console):
    assert (await console.get("/_gw/console/decisions/nope", headers=HEIDI)).status == 404


async def test_the_user_view_shows_decisions_denials_hours_and_countries(console):
    await traffic(console)
    html = await (await console.get("/_gw/console/users/alice", headers=HEIDI)).text()
    assert "Recent denials" in html and "/api/admin/users" in html
    assert "Busy hours: <strong>" in html and "no activity" not in html
    countries = re.search(r"<h2>Countries</h2>.*?</table>", html, re.S).group(0)
    assert re.search(r'<td>[A-Za-z]+</td><td class="num">2</td>', countries)  # both of alice's requests


async def test_the_rules_page_counts_what_shadow_rules_would_have_denied(console):
    await traffic(console)
    html = await (await console.get("/_gw/console/rules", headers=HEIDI)).text()
    assert "support-bulk-read-review" in html
    assert re.search(r'rule=support-bulk-read-review">1</a>', html)
    assert "No reload error." in html
    assert console.gw.store.current.revision in html


async def test_the_rules_page_shows_the_last_reload_error(aiohttp_client, crm, tmp_path, clock, redis_url, rules_copy):
    # No background reload (interval of an hour): the test reloads once, itself.
    console = await build_console(
        aiohttp_client, crm, tmp_path, clock, redis_url, rules=rules_copy, reload_interval=3600
    )
    (rules_copy / "operations.yaml").write_text("format: crmgw.rules/v1\nbogus: [\n")
    console.gw.store.check()  # first sight of a change: waits for it to settle
    assert console.gw.store.check() is False
    html = await (await console.get("/_gw/console/rules", headers=HEIDI)).text()
    assert "Last reload failed" in html and "operations.yaml" in html


async def test_explain_shows_the_decision_trace(console):
    html = await (
        await console.get(
            "/_gw/console/rules?user=alice&method=GET&path=/api/admin/users&at=2026-03-03T10:00&ip=10.1.2.3",
            headers=HEIDI,
        )
    ).text()
    assert 'class="badge effect-deny"' in html and "operation admin.admin" in html
    assert 'class="data compact trace"' in html


async def test_explain_reports_bad_input(console):
    resp = await console.get("/_gw/console/rules?user=alice&method=GET&path=/api/customers&ip=not-an-ip", headers=HEIDI)
    assert resp.status == 400
