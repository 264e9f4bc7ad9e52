"""The rules page replays the gateway's own audit log with a draft rules folder (issue 13.4): the same
diff as ``crmgw rules replay``, for a signed-in analyst, on real traffic through the real gateway."""

from __future__ import annotations

import re
import shutil
from datetime import datetime

import pytest

from tests.conftest import PARIS, RULES
from tests.console.conftest import sign_in
from tests.integration.conftest import auth

# Tuesday 3 March 2026, Paris: (hour, minute, user, target)
SESSION = [
    (10, 0, "alice", "/api/customers"),
    (17, 15, "alice", "/api/customers"),  # the one request the draft changes
    (17, 30, "dave", "/api/customers"),
    (18, 30, "alice", "/api/customers"),
]


@pytest.fixture
def draft(tmp_path):
    dest = tmp_path / "draft"
    shutil.copytree(RULES, dest)
    policy = dest / "policies" / "10-sales.yaml"
    policy.write_text(policy.read_text().replace('to: "18:00"', 'to: "17:00"'))
    return dest


async def record(console, clock) -> str:
    """Send SESSION through the gateway; the decision id of the 17:15 request."""
    for hour, minute, user, target in SESSION:
        clock.set(datetime(2026, 3, 3, hour, minute, tzinfo=PARIS))
        assert (await console.get(target, headers=auth(user, ip="10.1.2.3"))).status in (200, 403)
    found = await (await console.get("/_gw/console/api/decisions?user=alice", headers=auth("heidi"))).json()
    return next(d["decision_id"] for d in found["decisions"] if "T16:15" in d["time"])


async def test_a_signed_in_analyst_sees_the_drafts_diff_on_the_rules_page(console, clock, draft):
    changed = await record(console, clock)
    await sign_in(console, "heidi")  # the session cookie, as a browser has it
    resp = await console.get("/_gw/console/rules", params={"draft": str(draft)})
    html = await resp.text()
    assert resp.status == 200, html
    assert "Replay a draft" in html
    assert "4 request(s) re-decided" in html and "1 change" in html
    groups = re.search(r'<table class="data compact replay-groups">.*?</table>', html, re.S).group(0)
    assert groups.count("<tr>") == 2  # the header and one group
    assert "allow -&gt; deny" in groups and "sales-rep-customers-office-hours" in groups
    assert f'/decisions/{changed}"' in groups
    assert len(re.findall(r'/decisions/[0-9a-f]+"', groups)) == 1


async def test_an_identical_copy_shows_no_change(console, clock, tmp_path):
    await record(console, clock)
    same = tmp_path / "same"
    shutil.copytree(RULES, same)
    await sign_in(console, "heidi")
    html = await (await console.get("/_gw/console/rules", params={"draft": str(same)})).text()
    assert "no request changes" in html and "replay-groups" not in html


async def test_the_replay_api_answers_json_and_only_to_console_roles(console, clock, draft):
    changed = await record(console, clock)
    body = await (
        await console.get("/_gw/console/api/rules/replay", params={"draft": str(draft)}, headers=auth("heidi"))
    ).json()
    assert body["changed"] == 1 and body["by_rule"] == {"sales-rep-customers-office-hours": 1}
    assert body["groups"][0]["examples"][0]["decision_id"] == changed
    assert body["truncated"] is False
    refused = await console.get("/_gw/console/api/rules/replay", params={"draft": str(draft)}, headers=auth("alice"))
    assert refused.status == 403


async def test_a_draft_that_is_missing_or_does_not_load_is_reported(console, tmp_path):
    await sign_in(console, "heidi")
    resp = await console.get("/_gw/console/rules", params={"draft": "relative/rules"})
    assert resp.status == 400 and "absolute path" in await resp.text()
    resp = await console.get("/_gw/console/rules", params={"draft": str(tmp_path / "nowhere")})
    assert resp.status == 400 and "no folder" in await resp.text()
    broken = tmp_path / "broken"
    shutil.copytree(RULES, broken)
    (broken / "operations.yaml").write_text("format: crmgw.rules/v1\nbogus: [\n")
    resp = await console.get("/_gw/console/rules", params={"draft": str(broken)})
    html = await resp.text()
    assert resp.status == 400 and "do not load" in html and "operations.yaml:" in html
    api = await console.get("/_gw/console/api/rules/replay", params={"draft": str(broken)}, headers=auth("heidi"))
    assert api.status == 400 and (await api.json())["problems"]
