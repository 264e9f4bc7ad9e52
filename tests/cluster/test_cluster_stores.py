"""Every Redis user of the gateway on a real 3-master Redis Cluster (tests/cluster/servers.py):
the counters (one pipeline across masters), the alert mirror and its de-duplication, approvals and
access requests, and the gateway configured with a ``redis+cluster://`` URL as README.md gives it."""

from __future__ import annotations

import asyncio

import pytest
import redis
import yaml

from gateway.alerts import AlertsConfig, open_alert_store
from gateway.app import GATEWAY, create_app
from gateway.identity.devkeys import DEV_IDENTITY_CONFIG
from gateway.redisconn import connect_redis
from gateway.settings import load_settings
from gateway.signals import SignalsConfig
from gateway.signals.counters import GroupQuery, user_prefix
from gateway.signals.redis_backend import RedisCounters
from tests.alerts.conftest import raise_kwargs
from tests.conftest import RULES, open_rules
from tests.integration.conftest import CRM_TOKEN, auth, gateway_settings
from tests.signals.factories import record, request_for

pytestmark = pytest.mark.slow

USERS = [f"user{i}" for i in range(12)]
HOUR = GroupQuery("g:", ("1h",))


def keys_by_master(cluster) -> dict[int, list[str]]:
    """Every key on every master, read from each master directly (not through the cluster client)."""
    out = {}
    for port in cluster.procs:
        client = redis.Redis(port=port, decode_responses=True)
        try:
            if client.info("replication")["role"] == "master":
                out[port] = client.keys("crmgw:*")
        finally:
            client.close()
    return out


async def test_one_batch_counts_users_on_every_master_each_users_keys_in_one_slot(redis_cluster, cluster_url):
    masters = {redis_cluster.master_of(user_prefix(u)) for u in USERS}
    assert len(masters) == 3, "the users must spread over the three masters for this test to mean anything"
    counters = RedisCounters(connect_redis(cluster_url), SignalsConfig())
    try:
        await counters.prepare()
        batch = [request_for(record(user=u, resource_id="7"), HOUR) for u in USERS]
        first = await counters.count(batch)  # one ClusterPipeline: EVALSHA per user, split per master
        second = await counters.count([request_for(record(user=u, resource_id="8"), HOUR) for u in USERS])
    finally:
        await counters.close()
    assert [r.groups["g:"].windows["1h"]["requests"] for r in first] == [1] * len(USERS)
    assert [r.groups["g:"].windows["1h"]["requests"] for r in second] == [2] * len(USERS)
    for port, keys in keys_by_master(redis_cluster).items():
        users = {k.split("{u:")[1].split("}")[0] for k in keys}
        assert all(redis_cluster.master_of(user_prefix(u)) == port for u in users), (port, users)


async def test_a_batch_after_every_master_forgot_the_script_reloads_it(cluster_url):
    counters = RedisCounters(connect_redis(cluster_url), SignalsConfig())
    try:
        await counters.prepare()
        await counters.client.script_flush()  # what a restarted (or newly promoted) master looks like
        results = await counters.count([request_for(record(user=u), HOUR) for u in USERS])
    finally:
        await counters.close()
    assert [r.groups["g:"].windows["1h"]["requests"] for r in results] == [1] * len(USERS)


async def test_two_stores_on_the_cluster_deduplicate_one_open_alert(cluster_url, tmp_path):
    stores = [
        await open_alert_store(AlertsConfig(), redis_url=cluster_url, base_dir=tmp_path / n, background=False)
        for n in ("one", "two")
    ]
    for n, store in zip(("one", "two"), stores):
        (tmp_path / n).mkdir(exist_ok=True)
    try:
        first = await stores[0].raise_alert(**raise_kwargs())
        again = await stores[1].raise_alert(**raise_kwargs())
        listed = await stores[1].list(status="open", limit=10)
        counts = await stores[0].counts()  # ZINTERCARD of two index keys: one slot thanks to the hash tag
    finally:
        for store in stores:
            await store.close()
    assert first is not None and again == first
    assert [a.id for a in listed] == [first]
    assert counts["by_status"]["open"] == 1 and counts["open_by_level"]["high"] == 1


async def test_the_gateway_given_a_cluster_url_in_its_settings_file_keeps_every_store_on_it(
    aiohttp_client, crm, redis_cluster, cluster_url, tmp_path, clock
):
    settings_file = tmp_path / "gateway.yaml"
    settings_file.write_text(
        yaml.safe_dump(
            {
                "upstream": {"url": str(crm.make_url("")).rstrip("/"), "credential": {"value": f"Bearer {CRM_TOKEN}"}},
                "rules_dir": str(RULES),
                "audit": {"path": "audit.log"},
                "identity": DEV_IDENTITY_CONFIG.model_dump(mode="json"),
            }
        )
        + f"redis_url: {cluster_url}\n"  # the line README.md gives
    )
    settings, errors = load_settings(settings_file)
    assert errors == [] and settings is not None and settings.redis_url == cluster_url
    gw = await aiohttp_client(create_app(settings, open_rules(RULES), clock=clock))
    services = gw.server.app[GATEWAY]
    assert (await gw.get("/api/customers/1", headers=auth("grace"))).status == 200
    await services.signals.drain()
    health = await (await gw.get("/_gw/health")).json()
    assert health["status"] == "ok", health
    assert health["signals"]["problems"] == [] and health["alerts"]["redis"] == "ok"
    assert services.approvals.redis_up and services.access.redis_up
    found = [k for keys in keys_by_master(redis_cluster).values() for k in keys]
    for prefix in ("crmgw:{u:grace}:", "crmgw:{alerts}:replayed:", "crmgw:{approvals}:replayed:", "crmgw:{access}:"):
        assert any(k.startswith(prefix) for k in found), prefix
    assert "crmgw:signals:epoch" in found


async def two_gateways(aiohttp_client, crm, cluster_url, rules, tmp_path, clock):
    """Two gateway replicas (own folders) on the cluster, as the integration tests build one."""
    gateways = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        settings = gateway_settings(str(crm.make_url("")).rstrip("/"), tmp_path / name, rules, redis_url=cluster_url)
        gateways.append(await aiohttp_client(create_app(settings, open_rules(rules), clock=clock)))
    return gateways


async def test_an_approval_asked_on_one_gateway_is_decided_on_the_other_and_used_once(
    aiohttp_client, crm, cluster_url, rules_copy, tmp_path, clock
):
    from tests.approvals.conftest import add_approval_rules
    from tests.approvals.test_approvals_e2e import crm_customers

    rules = add_approval_rules(rules_copy)
    one, two = await two_gateways(aiohttp_client, crm, cluster_url, rules, tmp_path, clock)
    east = [r["id"] for r in await crm_customers(crm) if r["team"] == "east"]
    bulk = {"json": {"ids": east[:2]}, "headers": auth("dave")}
    resp = await one.post("/api/customers/bulk-delete", **bulk)
    body = await resp.json()
    assert (resp.status, body["reason"]) == (403, "approval-required"), body
    services = two.server.app[GATEWAY]
    decided = await services.approvals.decide(
        body["approval_id"], approve=True, actor="erin", note=None, directory=services.store.current.directory
    )
    assert decided.status == "approved"
    assert (await one.post("/api/customers/bulk-delete", **bulk)).status == 200
    stored = await services.approvals.get(body["approval_id"])
    assert stored is not None and stored.status == "consumed"


async def test_an_access_request_approved_on_one_gateway_grants_and_its_revocation_ends_it_on_the_other(
    aiohttp_client, crm, cluster_url, tmp_path, clock
):
    from tests.access.test_access_e2e import act, ask, export

    one, two = await two_gateways(aiohttp_client, crm, cluster_url, RULES, tmp_path, clock)
    req = await ask(one, clock)  # carol asks on one
    await act(two, req["id"], "approve", "erin")  # erin approves on two
    for _ in range(40):  # one sees a grant approved elsewhere within its refresh (1 s)
        if (await export(one))[0] == 200:
            break
        await asyncio.sleep(0.1)
    assert (await export(one))[0] == 200
    await act(two, req["id"], "revoke", "erin")
    assert (await export(one))[0] == 403  # re-read from the cluster before use: ends at once
