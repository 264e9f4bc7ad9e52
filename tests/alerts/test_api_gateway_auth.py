"""The alerts API behind the gateway's own admin authentication (real tokens, real directory).

The routes run on a side application (its own alert store on the test Redis) that authorises with
the real gateway services' ``authenticate_admin``: exactly the ``authorize`` create_app passes
(the ``console_api`` fixture, tests/alerts/conftest.py).
"""

from __future__ import annotations

import pytest
from aiohttp import web

from gateway.alerts.api import register_alert_routes
from tests.alerts.conftest import raise_kwargs
from tests.integration.conftest import auth


@pytest.mark.parametrize("user,status", [("heidi", 200), ("grace", 200), ("alice", 403), ("ivan", 403), (None, 401)])
async def test_only_configured_roles_get_the_alerts(console_api, user, status):
    await console_api.store.raise_alert(**raise_kwargs())
    resp = await console_api.get("/_gw/api/alerts", headers=auth(user) if user else {})
    assert resp.status == status
    if status != 200:
        assert set(await resp.json()) == {"error", "reason", "request_id"}


async def test_the_actor_is_the_token_subject(console_api):
    alert_id = await console_api.store.raise_alert(**raise_kwargs())
    resp = await console_api.post(
        f"/_gw/api/alerts/{alert_id}/false-positive", json={"note": "known job"}, headers=auth("heidi")
    )
    assert resp.status == 200
    assert (await console_api.store.get(alert_id)).history[-1].actor == "heidi"


async def test_no_store_yet_answers_503(aiohttp_client):
    app = web.Application()
    register_alert_routes(app, prefix="/_gw", store_getter=lambda: None, authorize=lambda req: None)
    client = await aiohttp_client(app)
    assert (await client.get("/_gw/api/alerts")).status == 503
