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
