"""Alert pages: the queue (order, filters, counts), one alert, and actions that go through the store."""

from __future__ import annotations

import re

import pytest

from tests.console.conftest import alert_kwargs, csrf_of, origin, sign_in
from tests.integration.conftest import auth


def ids_in(html: str) -> list[str]:
    return re.findall(r'data-href="/_gw/console/alerts/([0-9A-Z]+)"', html)


async def act(console, alert_id, **form):
    csrf = await csrf_of(console, f"/_gw/console/alerts/{alert_id}")
    return await console.post(
        f"/_gw/console/alerts/{alert_id}/action",
        data={"csrf": csrf, **form},
        headers=origin(console),
        allow_redirects=False,
    )


async def test_the_queue_shows_open_alerts_most_severe_first_and_counts_per_level(console):
    store = console.gw.alerts
    low = await store.raise_alert(**alert_kwargs(user="bob", level="low", window="a"))
    critical = await store.raise_alert(**alert_kwargs(user="carol", level="critical", window="b"))
    closed = await store.raise_alert(**alert_kwargs(user="dave", level="critical", window="c"))
    await store.transition(closed, actor="heidi", status="resolved")
    html = await (await console.get("/_gw/console/alerts", headers=auth("heidi"))).text()
    assert ids_in(html) == [critical, low]
    assert re.search(r'data-level="critical">\s*<span class="n">1</span>', html)
    everything = await (await console.get("/_gw/console/alerts?status=all", headers=auth("heidi"))).text()
    assert ids_in(everything) == [critical, low, closed]  # open ones first


@pytest.mark.parametrize(
    "query,expected",
    [
        ("level=low", ["bob"]),
        ("user=carol", ["carol"]),
        ("type=enumeration-distinct", ["carol"]),
        ("status=resolved", []),
    ],
)
async def test_the_queue_filters(console, query, expected):
    store = console.gw.alerts
    await store.raise_alert(**alert_kwargs(user="bob", level="low"))
    await store.raise_alert(**alert_kwargs(user="carol", type="enumeration-distinct"))
    html = await (await console.get(f"/_gw/console/alerts?{query}", headers=auth("heidi"))).text()
    users = re.findall(r'<td><a href="/_gw/console/users/(\w+)">', html)
    assert users == expected


async def test_a_time_range_in_the_analysts_zone_filters_the_queue(console):
    await console.gw.alerts.raise_alert(**alert_kwargs())
    html = await (await console.get("/_gw/console/alerts?until=2000-01-01T00:00", headers=auth("heidi"))).text()
    assert ids_in(html) == []


async def test_a_bad_filter_is_explained_not_a_crash(console):
    resp = await console.get("/_gw/console/alerts?since=yesterday", headers=auth("heidi"))
    assert resp.status == 400
    assert "since: not a date and time" in await resp.text()


async def test_marking_false_positive_goes_through_the_store_with_the_analyst_as_actor(console):
    alert_id = await console.gw.alerts.raise_alert(**alert_kwargs())
    await sign_in(console, "heidi")
    resp = await act(console, alert_id, action="false_positive", note="month-end export")
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=false_positive")
    alert = await console.gw.alerts.get(alert_id)
    assert alert.status == "false_positive"
    assert [(h.actor, h.action) for h in alert.history[-2:]] == [("heidi", "false_positive"), ("heidi", "note")]
    assert alert.notes[-1].text == "month-end export"


async def test_acknowledge_then_assign(console):
    alert_id = await console.gw.alerts.raise_alert(**alert_kwargs())
    await sign_in(console, "heidi")
    await act(console, alert_id, action="ack")
    await act(console, alert_id, action="assign", assignee="grace")
    alert = await console.gw.alerts.get(alert_id)
    assert (alert.status, alert.assignee) == ("acknowledged", "grace")


async def test_a_refused_transition_is_shown_with_409(console):
    alert_id = await console.gw.alerts.raise_alert(**alert_kwargs())
    await console.gw.alerts.transition(alert_id, actor="heidi", status="resolved")
    await sign_in(console, "heidi")
    resp = await act(console, alert_id, action="ack")
    assert resp.status == 409
    assert "cannot become acknowledged" in await resp.text()


async def test_the_detail_escapes_everything_the_alert_carries(console):
    evil = "<script>alert(1)</script>"
    alert_id = await console.gw.alerts.raise_alert(
        **alert_kwargs(summary=f"summary {evil}", evidence={"path": evil, "user_agent": evil})
    )
    await sign_in(console, "heidi")
    await act(console, alert_id, action="note", note=evil)
    html = await (await console.get(f"/_gw/console/alerts/{alert_id}")).text()
    assert evil not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # summary, evidence, note


async def test_the_detail_explains_why_and_charts_the_users_days(console):
    alert_id = await console.gw.alerts.raise_alert(**alert_kwargs())
    html = await (await console.get(f"/_gw/console/alerts/{alert_id}", headers=auth("heidi"))).text()
    assert "records_exported in 1h" in html and ">900<" in html and ">600<" in html  # observed, threshold
    assert html.count('class="bar') == 14
    assert 'class="reference"' in html  # the usual daily max from the evidence


async def test_an_unknown_alert_is_404(console):
    assert (await console.get("/_gw/console/alerts/NOPE", headers=auth("heidi"))).status == 404
