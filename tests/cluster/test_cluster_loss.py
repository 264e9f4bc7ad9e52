"""One master of the cluster loses its data (FLUSHALL on that master only: what a master restarted
without persistence, or a failover to an empty replica, leaves): the users whose slots it holds are
reported lost, the others are not, and ``crmgw signals rebuild`` restores them through the cluster."""

from __future__ import annotations

import json

import orjson
import pytest
import redis

from gateway.redisconn import connect_redis
from gateway.signals import SignalsConfig
from gateway.signals.counters import user_prefix
from gateway.signals.memory_backend import MemoryCounters
from gateway.signals.redis_backend import RedisCounters
from tests.conftest import RULES
from tests.signals.factories import T0, export, later, record
from tests.signals.test_data_lost import count
from tests.signals.test_rebuild import DAY, comparable, crmgw, requests_for, traffic

pytestmark = pytest.mark.slow


def flush_master_of(cluster, user: str) -> None:
    client = redis.Redis(port=cluster.master_of(user_prefix(user)))
    try:
        client.flushall()
    finally:
        client.close()


async def test_a_master_losing_its_data_is_reported_for_the_users_on_it_only(
    make_stage, redis_cluster, cluster_url, sink
):
    assert redis_cluster.master_of(user_prefix("grace")) != redis_cluster.master_of(user_prefix("alice"))
    stage = await make_stage("redis", cluster_url)
    await count(stage, record("grace", when=later(0)), record("alice", when=later(0)))
    flush_master_of(redis_cluster, "grace")
    await count(stage, record("alice", when=later(1)))
    assert stage.health()["data_lost"] is False  # alice's master kept her keys
    await count(stage, record("grace", when=later(2)))
    health = stage.health()
    assert health["problems"] == ["signals-data-lost"] and health["state"] == "ok"
    (alert,) = sink.alerts
    assert alert["type"] == "signals-data-lost" and alert["evidence"]["users"] == ["grace"]


async def test_crmgw_signals_rebuild_with_a_cluster_url_restores_what_one_master_lost(
    redis_cluster, cluster_url, anomaly_rules, tmp_path
):
    config = SignalsConfig()
    records = traffic()  # alice's three days, written as the audit log
    audit_log = tmp_path / "audit.log"
    audit_log.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    probe = export(n=10, when=later(50))
    memory, counters = MemoryCounters(config), RedisCounters(connect_redis(cluster_url), config)
    try:
        (reference,) = (await memory.count(requests_for(anomaly_rules, *records, probe)))[-1:]
        await counters.count(requests_for(anomaly_rules, *records[:5]))
        flush_master_of(redis_cluster, "alice")
        await counters.count(requests_for(anomaly_rules, *records[5:]))
        since = (T0 - 3 * DAY).isoformat()
        code, out = await crmgw(
            *("signals", "rebuild", "--redis-url", cluster_url, "--rules", str(RULES)),
            *("--audit-log", str(audit_log), "--since", since, "--json"),
        )
        report = json.loads(out)
        assert (code, report["replayed"], report["skipped"], report["users"]) == (0, 5, 2, 1)
        (answer,) = await counters.count(requests_for(anomaly_rules, probe))
    finally:
        await counters.close()
    assert comparable(answer) == comparable(reference)
