"""GET /metrics after real traffic through a real gateway in front of the demo CRM."""

from __future__ import annotations

import asyncio

import pytest

from democrm.app import create_app as create_crm
from gateway.app import GATEWAY, create_app
from gateway.rulestore import RuleStore
from tests.integration.conftest import CRM_TOKEN, auth, gateway_settings
from tests.ops.conftest import free_port

FAMILIES = (
    "crmgw_requests_total",
    "crmgw_request_duration_seconds",
    "crmgw_upstream_errors_total",
    "crmgw_alerts_total",
    "crmgw_rule_reloads_total",
    "crmgw_rules_reload_failing",
    "crmgw_redis_up",
    "crmgw_audit_lines_written_total",
    "crmgw_audit_lines_dropped_total",
    "crmgw_signals_degraded_total",
    "crmgw_connections_refused_total",
    "crmgw_in_flight_requests",
)


async def gateway_client(aiohttp_client, tmp_path, clock, upstream: str, rules):
    settings = gateway_settings(upstream, tmp_path, rules)
    store, errors = RuleStore.open(rules)
    assert store is not None, errors
    return await aiohttp_client(create_app(settings, store, clock=clock))


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


async def test_metrics_expose_every_family_after_real_traffic(
    aiohttp_server, aiohttp_client, tmp_path, clock, rules_copy
):
    crm = await aiohttp_server(create_crm(service_token=CRM_TOKEN))
    gw = await gateway_client(aiohttp_client, tmp_path, clock, str(crm.make_url("")).rstrip("/"), rules_copy)
    assert (await gw.get("/api/customers/1", headers=auth("grace"))).status == 200
    assert (await gw.get("/api/customers?page_size=5", headers=auth("grace"))).status == 200
    assert (await gw.get("/api/customers/export.csv", headers=auth("alice"))).status == 403
    assert (await gw.get("/api/customers/1")).status == 401
    gateway = gw.app[GATEWAY]
    gateway.metrics.alert("mass-export", "high")  # what the alerts code calls per alert

    response = await gw.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    for family in FAMILIES:
        assert f"# TYPE {family} " in text, family
    values = samples(text)
    assert values['crmgw_requests_total{effect="allow",operation="customers.view",status="200"}'] == 1
    assert values['crmgw_requests_total{effect="allow",operation="customers.list",status="200"}'] == 1
    assert values['crmgw_requests_total{effect="deny",operation="customers.export",status="403"}'] == 1
    assert values['crmgw_requests_total{effect="deny",operation="none",status="401"}'] == 1
    assert values['crmgw_request_duration_seconds_count{operation="customers.view"}'] == 1
    assert values["crmgw_audit_lines_written_total"] == 4
    assert values['crmgw_alerts_total{level="high",type="mass-export"}'] == 1


async def test_upstream_errors_are_counted_by_reason(aiohttp_client, tmp_path, clock, rules_copy):
    gw = await gateway_client(aiohttp_client, tmp_path, clock, f"http://127.0.0.1:{free_port()}", rules_copy)
    assert (await gw.get("/api/customers/1", headers=auth("grace"))).status == 502
    values = samples(await (await gw.get("/metrics")).text())
    assert values['crmgw_upstream_errors_total{reason="upstream-unavailable"}'] == 1


@pytest.mark.slow
async def test_rule_reloads_are_counted_by_status(aiohttp_server, aiohttp_client, tmp_path, clock, rules_copy):
    crm = await aiohttp_server(create_crm(service_token=CRM_TOKEN))
    gw = await gateway_client(aiohttp_client, tmp_path, clock, str(crm.make_url("")).rstrip("/"), rules_copy)
    store = gw.app[GATEWAY].store
    grants = rules_copy / "grants.yaml"
    grants.write_text(grants.read_text() + "\n# an edit\n")
    for _ in range(200):
        if store.status.reloads:
            break
        await asyncio.sleep(0.05)
    grants.write_text("format: crmgw.rules/v1\nnot-a-key: [\n")
    for _ in range(200):
        if store.status.failures:
            break
        await asyncio.sleep(0.05)
    values = samples(await (await gw.get("/metrics")).text())
    assert values['crmgw_rule_reloads_total{status="ok"}'] == 1
    assert values['crmgw_rule_reloads_total{status="failed"}'] == 1
    assert values["crmgw_rules_reload_failing"] == 1


async def test_metrics_are_for_the_admin_networks_only(aiohttp_server, aiohttp_client, tmp_path, clock):
    from gateway.settings import Settings

    crm = await aiohttp_server(create_crm(service_token=CRM_TOKEN))
    settings = gateway_settings(str(crm.make_url("")).rstrip("/"), tmp_path, rules=tmp_path)
    settings = Settings.model_validate(
        {**settings.model_dump(), "base_dir": settings.base_dir, "admin": {"allow_networks": ["10.9.0.0/16"]}}
    )
    from tests.conftest import RULES

    store, _ = RuleStore.open(RULES)
    gw = await aiohttp_client(create_app(settings, store, clock=clock))
    response = await gw.get("/metrics")
    assert response.status == 403
