"""The scorer behind the real gateway (real democrm, real sockets): every request is counted.

The scorer is handed to create_app (``scorer=``) and started and stopped with the app's lifecycle,
as the one the lifecycle builds from the settings is.
"""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.rulestore import RuleStore
from gateway.scoring import ScoringConfig, build_scorer
from tests.conftest import RULES
from tests.detectors.conftest import CollectingAlerts
from tests.integration.conftest import CRM_TOKEN, auth, gateway_settings


@pytest.mark.slow
async def test_requests_through_the_gateway_reach_the_scorer(
    aiohttp_server, aiohttp_client, tmp_path, clock, model_dir
):
    from democrm.app import create_app as create_crm

    crm = await aiohttp_server(create_crm(service_token=CRM_TOKEN))
    settings = gateway_settings(str(crm.make_url("")).rstrip("/"), tmp_path, RULES)
    store, errors = RuleStore.open(RULES)
    assert store is not None, errors
    scorer = build_scorer(
        ScoringConfig(model_dir=str(model_dir), batch_interval=3600), alerts=CollectingAlerts(), clock=clock
    )
    app = create_app(settings, store, clock=clock, scorer=scorer)
    client = await aiohttp_client(app)  # the gateway's lifecycle starts and stops the scorer
    for _ in range(3):
        resp = await client.get("/api/customers", headers=auth("alice"))
        assert resp.status == 200
    resp = await client.get("/api/admin/users", headers=auth("alice"))
    assert resp.status == 403
    await scorer.drain()
    window = scorer.views["alice"].window
    assert window.counts["requests"] == 4 and window.counts["denials"] == 1
    assert window.counts["records_read"] > 0
    assert scorer.health()["scored"] == 1 and scorer.health()["errors"] == 0
