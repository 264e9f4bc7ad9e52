"""The alert page's "Why" for a detector alert: each feature against the user's own usual and the
peer usual, the drivers in words (gateway/scoring/evidence.py), escaped; and an alert that echo days
joined (recurred) in the queue and on its page."""

from __future__ import annotations

import re
from datetime import timedelta

from gateway.scoring.evidence import driver_text
from tests.console.conftest import alert_kwargs
from tests.integration.conftest import auth

EVIL = "<script>alert(1)</script>"


def feature(value, contribution, own, peer_usual, group="sales_rep"):
    return {
        "value": value,
        "baseline": peer_usual,
        "rarity": 3.1,
        "contribution": contribution,
        "own": own,
        "peer": {"group": group, "usual": peer_usual},
    }


def detector_kwargs(features: dict, **over):
    """The raise_alert arguments as gateway.scoring.evidence.finding builds them."""
    evidence = {
        "day": "2026-03-09",
        "features": features,
        "drivers": [driver_text(n, f) for n, f in features.items() if f["contribution"] > 0],
        "score": 4.2,
        "threshold": 1.9,
        "baseline_group": "sales_rep",
        "own_history_days": 5,
        "counters": {"requests": 320},
        "recent_requests": [],
    }
    base = {
        "type": "detector-anomaly",
        "rule": "detector",
        "source": "detector",
        "level": "high",
        "score": 4.2,
        "window": "2026-03-09",
        "summary": f"{over.get('user', 'alice')} on 2026-03-09: unusual views",
        "evidence": evidence,
    }
    return alert_kwargs(**{**base, **over})


def why_rows(html: str) -> dict[str, list[str]]:
    table = re.search(r'<table class="data compact why">(.*?)</table>', html, re.S).group(1)
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).split() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, re.S)]
        rows[" ".join(cells[0])] = [" ".join(c) for c in cells[1:]]
    return rows


async def test_each_feature_is_shown_against_the_users_own_usual_and_the_peer_usual(console):
    features = {
        "sequential_views": feature(300.0, 0.71, {"usual": 0.0, "max": 2.0, "days": 5}, 1.5),
        "distinct_records": feature(310.0, 0.29, {"usual": 40.0, "max": 61.0, "days": 5}, 35.0),
    }
    alert_id = await console.gw.alerts.raise_alert(**detector_kwargs(features, user="dave"))
    html = await (await console.get(f"/_gw/console/alerts/{alert_id}", headers=auth("heidi"))).text()
    rows = why_rows(html)
    assert rows["Feature"] == ["Observed", "Own usual", "Peer usual", "Share"]
    assert rows["sequential_views"] == ["300", "0 max 2, 5 d", "1.5 sales_rep", "0.71"]
    assert rows["distinct_records"] == ["310", "40 max 61, 5 d", "35 sales_rep", "0.29"]
    drivers = re.search(r'<ul class="drivers">(.*?)</ul>', html, re.S).group(1)
    assert drivers.count("<li>") == 2 and "own usual 0, max 2 over 5 days; sales_rep usual 1.5" in drivers
    pre = re.search(r'<pre class="evidence">(.*?)</pre>', html, re.S).group(1)
    assert "drivers" not in pre and "own_history_days" in pre  # not repeated in "All evidence"


async def test_a_new_user_has_no_own_usual_only_the_peers(console):
    features = {"sequential_views": feature(300.0, 1.0, None, 1.5, group="support")}
    alert_id = await console.gw.alerts.raise_alert(**detector_kwargs(features, user="newcomer"))
    html = await (await console.get(f"/_gw/console/alerts/{alert_id}", headers=auth("heidi"))).text()
    assert why_rows(html)["sequential_views"] == ["300", "no history", "1.5 support", "1"]
    assert "no own history" in html  # the driver says so too


async def test_a_threshold_alert_keeps_its_threshold_columns(console):
    alert_id = await console.gw.alerts.raise_alert(**alert_kwargs())
    html = await (await console.get(f"/_gw/console/alerts/{alert_id}", headers=auth("heidi"))).text()
    rows = why_rows(html)
    assert rows["Feature / threshold"] == ["Observed", "Threshold", "Baseline (usual)", "Before / deviation"]
    assert rows["records_exported in 1h"] == ["900", "600", "200", "300"]
    assert "Own usual" not in html and 'class="drivers"' not in html


async def test_evidence_text_is_escaped_in_the_why_table_and_the_drivers(console):
    features = {EVIL: feature(EVIL, 1.0, {"usual": EVIL, "max": EVIL, "days": EVIL}, EVIL, group=EVIL)}
    kwargs = detector_kwargs({"sequential_views": feature(1.0, 1.0, None, 1.0)}, user="dave")
    kwargs["evidence"] = {**kwargs["evidence"], "features": features, "drivers": [EVIL, 42, {"x": EVIL}]}
    alert_id = await console.gw.alerts.raise_alert(**kwargs)
    html = await (await console.get(f"/_gw/console/alerts/{alert_id}", headers=auth("heidi"))).text()
    assert EVIL not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    table = re.search(r'<table class="data compact why">(.*?)</table>', html, re.S).group(1)
    assert table.count(escaped) == 7  # name, observed, own usual, max, days, peer usual, group
    drivers = re.search(r'<ul class="drivers">(.*?)</ul>', html, re.S).group(1)
    assert drivers.count("<li>") == 1 and escaped in drivers  # only text drivers are shown


async def test_a_joined_alert_shows_its_recurrences_in_the_queue_and_on_its_page(console, clock):
    store = console.gw.alerts
    features = {"sequential_views": feature(300.0, 1.0, None, 1.5)}
    first = await store.raise_alert(**detector_kwargs(features, user="dave"))
    for day in (10, 11):
        clock.set(clock.now + timedelta(days=1))
        joined = await store.raise_alert(**detector_kwargs(features, user="dave", window=f"2026-03-{day}"))
        assert joined == first
    queue = await (await console.get("/_gw/console/alerts", headers=auth("heidi"))).text()
    assert re.search(
        r'class="muted small recurred" title="2 later window\(s\) joined this alert: '
        r'2026-03-10, 2026-03-11">\+2<',
        queue,
    )
    page = await (await console.get(f"/_gw/console/alerts/{first}", headers=auth("heidi"))).text()
    assert re.search(r'class="recurred fact-row">2 later windows joined it: 2026-03-10, 2026-03-11', page)
    assert page.count("<td>recurred</td>") == 2
    assert "2026-03-11: score 4.2, dave on 2026-03-09: unusual views" in page
