"""The admin JSON API on a real aiohttp server, a real store and Redis; authorisation by a test header."""

from __future__ import annotations

import pytest

from tests.alerts.conftest import JSON, as_user, raise_kwargs


async def test_list_and_get_for_an_analyst(api):
    alert_id = await api.store.raise_alert(**raise_kwargs())
    resp = await api.get("/_gw/api/alerts?status=open&level=high", headers=as_user("heidi"))
    assert resp.status == 200
    body = await resp.json()
    assert [a["id"] for a in body["alerts"]] == [alert_id] and body["degraded"] == []
    resp = await api.get(f"/_gw/api/alerts/{alert_id}", headers=as_user("heidi"))
    assert (await resp.json())["evidence"] == raise_kwargs()["evidence"]


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/_gw/api/alerts"),
        ("GET", "/_gw/api/alerts/counts"),
        ("GET", "/_gw/api/alerts/X"),
        ("POST", "/_gw/api/alerts/X/ack"),
        ("POST", "/_gw/api/alerts/X/false-positive"),
    ],
)
@pytest.mark.parametrize("user,status", [(None, 401), ("alice", 403)])
async def test_everything_needs_an_analyst(api, method, path, user, status):
    resp = await api.request(method, path, headers={**JSON, **(as_user(user) if user else {})}, data="{}")
    assert resp.status == status
    body = await resp.json()
    assert set(body) == {"error", "reason", "request_id"}
    assert body["reason"] == ("credential-missing" if status == 401 else "role-unauthorized")


async def test_actions_record_the_authenticated_actor(api):
    alert_id = await api.store.raise_alert(**raise_kwargs())
    resp = await api.post(f"/_gw/api/alerts/{alert_id}/ack", json={"note": "on it"}, headers=as_user("heidi"))
    assert resp.status == 200 and (await resp.json())["assignee"] == "heidi"
    resp = await api.post(f"/_gw/api/alerts/{alert_id}/assign", json={"assignee": "grace"}, headers=as_user("heidi"))
    assert (await resp.json())["assignee"] == "grace"
    resp = await api.post(
        f"/_gw/api/alerts/{alert_id}/false-positive", json={"note": "month end"}, headers=as_user("grace")
    )
    alert = await resp.json()
    assert alert["status"] == "false_positive"
    assert [(h["actor"], h["action"]) for h in alert["history"]][-2:] == [
        ("grace", "false_positive"),
        ("grace", "note"),
    ]
    assert (await api.store.get(alert_id)).status == "false_positive"


async def test_invalid_transition_is_409_and_unknown_alert_404(api):
    alert_id = await api.store.raise_alert(**raise_kwargs())
    await api.post(f"/_gw/api/alerts/{alert_id}/resolve", json={}, headers=as_user("heidi"))
    resp = await api.post(f"/_gw/api/alerts/{alert_id}/ack", json={}, headers=as_user("heidi"))
    assert resp.status == 409 and (await resp.json())["reason"].startswith("transition-invalid")
    resp = await api.get("/_gw/api/alerts/01NOPE", headers=as_user("heidi"))
    assert resp.status == 404


async def test_state_changes_need_post_with_json(api):
    alert_id = await api.store.raise_alert(**raise_kwargs())
    form = await api.post(f"/_gw/api/alerts/{alert_id}/ack", data={"note": "x"}, headers=as_user("heidi"))
    assert form.status == 400  # an HTML form (possible cross-site) is refused
    get = await api.get(f"/_gw/api/alerts/{alert_id}/ack", headers=as_user("heidi"))
    assert get.status in (404, 405)
    assert (await api.store.get(alert_id)).status == "open"


@pytest.mark.parametrize("query", ["status=closed", "level=huge", "limit=0", "since=yesterday", "colour=red"])
async def test_bad_filters_are_400(api, query):
    resp = await api.get(f"/_gw/api/alerts?{query}", headers=as_user("heidi"))
    assert resp.status == 400 and (await resp.json())["error"] == "bad-request"


async def test_counts_for_the_console(api):
    await api.store.raise_alert(**raise_kwargs(level="critical"))
    resp = await api.get("/_gw/api/alerts/counts", headers=as_user("grace"))
    assert (await resp.json())["open_by_level"]["critical"] == 1


async def test_a_verdict_closes_an_alert_and_can_be_corrected(api):
    alert_id = await api.store.raise_alert(**raise_kwargs())
    url = f"/_gw/api/alerts/{alert_id}/verdict"
    resp = await api.post(url, json={"verdict": "benign_true_positive", "note": "ok"}, headers=as_user("heidi"))
    alert = await resp.json()
    assert resp.status == 200 and (alert["status"], alert["verdict"], alert["determination"]) == (
        "resolved",
        "benign_true_positive",
        None,
    )
    body = {"verdict": "true_positive", "determination": "insider_threat"}
    alert = await (await api.post(url, json=body, headers=as_user("grace"))).json()
    assert (alert["status"], alert["verdict"], alert["determination"]) == (
        "resolved",
        "true_positive",
        "insider_threat",
    )
    assert alert["history"][-1] == {
        "time": alert["history"][-1]["time"],
        "actor": "grace",
        "action": "verdict",
        "from": "benign_true_positive",
        "to": "true_positive/insider_threat",
    }


async def test_resolve_and_false_positive_take_a_verdict_that_agrees_with_them(api):
    a = await api.store.raise_alert(**raise_kwargs())
    b = await api.store.raise_alert(**raise_kwargs(user="bob"))
    ok = await api.post(
        f"/_gw/api/alerts/{a}/false-positive",
        json={"verdict": "false_positive", "determination": "test"},
        headers=as_user("heidi"),
    )
    assert ok.status == 200 and (await ok.json())["determination"] == "test"
    clash = await api.post(f"/_gw/api/alerts/{b}/resolve", json={"verdict": "false_positive"}, headers=as_user("heidi"))
    assert clash.status == 400 and (await clash.json())["reason"] == "action-invalid"
    assert (await api.store.get(b)).status == "open"


@pytest.mark.parametrize(
    "action,body",
    [
        ("verdict", {}),  # no verdict
        ("verdict", {"verdict": "maybe"}),
        ("verdict", {"verdict": "true_positive", "determination": "<script>"}),
        ("verdict", {"determination": "test"}),  # a determination needs a verdict
        ("ack", {"verdict": "true_positive"}),  # ack takes no verdict
        ("verdict", {"verdict": ["true_positive"]}),
    ],
)
async def test_bad_verdict_bodies_are_400_and_change_nothing(api, action, body):
    alert_id = await api.store.raise_alert(**raise_kwargs())
    resp = await api.post(f"/_gw/api/alerts/{alert_id}/{action}", json=body, headers=as_user("heidi"))
    answer = await resp.json()
    assert resp.status == 400 and answer["reason"] == "body-invalid"
    assert "script" not in str(answer)  # nothing echoed
    assert (await api.store.get(alert_id)).rev == 1


async def test_bulk_verdict_changes_each_alert_and_names_each_refusal(api):
    store = api.store
    ids = [await store.raise_alert(**raise_kwargs(user=f"u{i}")) for i in range(3)]
    await store.transition(ids[2], actor="heidi", status="acknowledged")
    closed = await store.raise_alert(**raise_kwargs(user="z"))
    await store.transition(closed, actor="heidi", status="false_positive")
    body = {"ids": [*ids, closed, "01NOPE"], "action": "resolve", "verdict": "true_positive", "note": "one case"}
    resp = await api.post("/_gw/api/alerts/bulk", json=body, headers=as_user("grace"))
    assert resp.status == 200
    answer = await resp.json()
    assert answer == {"done": [*ids, closed], "refused": {"01NOPE": "alert-unknown"}}
    for alert_id in [*ids, closed]:
        alert = await store.get(alert_id)
        assert (alert.status, alert.verdict, alert.notes[-1].actor) == ("resolved", "true_positive", "grace")
    ack = await api.post("/_gw/api/alerts/bulk", json={"ids": ids, "action": "ack"}, headers=as_user("grace"))
    assert await ack.json() == {"done": [], "refused": dict.fromkeys(ids, "transition-invalid")}


@pytest.mark.parametrize(
    "body",
    [
        {"ids": [], "action": "ack"},
        {"ids": "01A", "action": "ack"},
        {"ids": ["01A"], "action": "delete"},
        {"ids": ["01A"], "action": "resolve"},  # resolve needs a verdict
        {"ids": ["01A"], "action": "ack", "verdict": "true_positive"},
        {"ids": ["01A"], "action": "assign"},  # assign needs an assignee
        {"ids": ["01A"] * 501, "action": "ack"},
        {"ids": ["01A"], "action": "ack", "colour": "red"},
    ],
)
async def test_bad_bulk_bodies_are_400(api, body):
    resp = await api.post("/_gw/api/alerts/bulk", json=body, headers=as_user("heidi"))
    assert resp.status == 400 and (await resp.json())["reason"] == "body-invalid"


@pytest.mark.parametrize("user,status", [(None, 401), ("alice", 403)])
async def test_bulk_needs_an_analyst_and_json(api, user, status):
    alert_id = await api.store.raise_alert(**raise_kwargs())
    body = {"ids": [alert_id], "action": "resolve", "verdict": "false_positive"}
    resp = await api.post("/_gw/api/alerts/bulk", json=body, headers=as_user(user) if user else {})
    assert resp.status == status
    form = await api.post(
        "/_gw/api/alerts/bulk",
        data={"ids": alert_id, "action": "resolve", "verdict": "false_positive"},
        headers=as_user("heidi"),
    )
    assert form.status == 400  # a cross-site HTML form cannot send JSON
    assert (await api.store.get(alert_id)).status == "open"
