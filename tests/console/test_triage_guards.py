"""Triage in the console acts only as an analyst saw it and never on their own alerts (review of
issue 16): the real gateway (create_app), its console and alerts API, the alert store on the test
Redis."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.console.conftest import alert_kwargs, csrf_of, origin, sign_in
from tests.integration.conftest import auth

SHOWN = re.compile(r'<input type="hidden" name="id" value="(\w+)">')


async def test_an_analyst_cannot_triage_alerts_about_themselves_on_any_path(console):
    gw = console.gw
    mine = await gw.alerts.raise_alert(**alert_kwargs(user="heidi", level="critical", window="w1"))
    other = await gw.alerts.raise_alert(**alert_kwargs(user="bob", window="w2"))
    await sign_in(console, "heidi")
    page = await (await console.get(f"/_gw/console/alerts/{mine}")).text()
    assert "own-alert" in page and f'action="/_gw/console/alerts/{mine}/action"' not in page  # no form
    csrf = await csrf_of(console, "/_gw/console/alerts")
    resp = await console.post(
        f"/_gw/console/alerts/{mine}/action",
        data={"csrf": csrf, "action": "verdict", "verdict": "false_positive", "note": "mine, fine"},
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 403 and "own-alert" in await resp.text()
    resp = await console.post(
        "/_gw/console/alerts/bulk",
        data=[("csrf", csrf), ("action", "resolve"), ("verdict", "false_positive"), ("id", mine), ("id", other)],
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 303 and "1+alert%28s%29+updated%3B+1+refused" in resp.headers["Location"]
    resp = await console.post(f"/_gw/api/alerts/{mine}/false-positive", json={"note": "x"}, headers=auth("heidi"))
    assert (resp.status, (await resp.json())["reason"]) == (403, "own-alert")
    resp = await console.post("/_gw/api/alerts/bulk", json={"ids": [mine], "action": "ack"}, headers={**auth("heidi")})
    assert (await resp.json())["refused"] == {mine: "own-alert"}
    alert = await gw.alerts.get(mine)
    assert (alert.status, alert.rev, alert.notes) == ("open", 1, [])
    assert (await gw.alerts.get(other)).status == "false_positive"
    resp = await console.post(f"/_gw/api/alerts/{mine}/ack", json={}, headers=auth("grace"))  # another analyst
    assert resp.status == 200 and (await gw.alerts.get(mine)).status == "acknowledged"


async def test_an_incident_action_never_touches_an_alert_raised_after_the_page_was_shown(console, clock):
    gw = console.gw
    low = await gw.alerts.raise_alert(**alert_kwargs(user="bob", level="low", window="w1", type="off-hours"))
    await sign_in(console, "heidi")
    page = await (await console.get(f"/_gw/console/incidents/{low}")).text()
    csrf = await csrf_of(console, f"/_gw/console/incidents/{low}")
    shown = SHOWN.findall(page)
    assert shown == [low]
    clock.set(clock.now + timedelta(minutes=5))  # raised while the analyst reads the page
    critical = await gw.alerts.raise_alert(
        **alert_kwargs(user="bob", level="critical", window="w2", type="bulk-export")
    )
    form = [("csrf", csrf), ("action", "resolve"), ("verdict", "false_positive"), ("note", "noise")]
    resp = await console.post(
        f"/_gw/console/incidents/{low}/action",
        data=form + [("id", i) for i in shown],
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 409 and "incident-changed" in await resp.text()
    assert {(await gw.alerts.get(i)).status for i in (low, critical)} == {"open"}
    resp = await console.post(  # a form without the ids it showed (an old page, a forged post)
        f"/_gw/console/incidents/{low}/action", data=form, headers=origin(console), allow_redirects=False
    )
    assert resp.status == 409 and (await gw.alerts.get(critical)).status == "open"
    page = await (await console.get(f"/_gw/console/incidents/{low}")).text()
    assert sorted(SHOWN.findall(page)) == sorted([low, critical])  # seen now: acted on
    resp = await console.post(
        f"/_gw/console/incidents/{low}/action",
        data=form + [("id", i) for i in SHOWN.findall(page)],
        headers=origin(console),
        allow_redirects=False,
    )
    assert resp.status == 303
    assert {(await gw.alerts.get(i)).status for i in (low, critical)} == {"false_positive"}


async def test_an_acknowledged_alert_a_critical_echo_joined_is_open_again_and_back_on_page_one(console, clock):
    gw = console.gw
    console.console.config = console.console.config.model_copy(update={"page_size": 10})
    kwargs = alert_kwargs(user="bob", level="low", window="2026-03-02", score=0.6, type="detector-anomaly")
    first = await gw.alerts.raise_alert(**kwargs, source="detector")
    await gw.alerts.transition(first, actor="erin", status="acknowledged", note="looked, meh")
    for i in range(12):  # the queue fills with newer alerts: the acknowledged one sinks to page 2
        clock.set(clock.now + timedelta(minutes=10))
        await gw.alerts.raise_alert(**alert_kwargs(user="carol", level="low", window=f"x{i}", type=f"t{i}"))
    await sign_in(console, "heidi")
    assert first not in await (await console.get("/_gw/console/alerts")).text()
    clock.set(clock.now + timedelta(hours=20))
    kwargs = alert_kwargs(user="bob", level="critical", window="2026-03-03", score=0.99, type="detector-anomaly")
    assert await gw.alerts.raise_alert(**kwargs, source="detector") == first  # joined
    alert = await gw.alerts.get(first)
    assert (alert.status, alert.level, alert.assignee) == ("open", "critical", "erin")
    assert [h.action for h in alert.history][-3:] == ["recurred", "escalated", "reopened"]
    page1 = await (await console.get("/_gw/console/alerts")).text()
    assert first in page1 and "row-critical" in page1
    assert first not in await (await console.get("/_gw/console/alerts?page=2")).text()
