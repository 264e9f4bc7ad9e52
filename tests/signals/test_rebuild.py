"""Issue 11 point 5 (c): ``crmgw signals rebuild`` restores the windows from the audit log.

The reference is the memory backend fed every record without a loss: after FLUSHALL, live counting
and a rebuild, Redis must answer the next request exactly as that reference does.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta

import pytest
import redis as redis_sync

from detectors.events import count_event
from gateway.app import GATEWAY, create_app
from gateway.cli import main
from gateway.redisconn import connect_redis
from gateway.rulestore import RuleStore
from gateway.signals import SignalsConfig
from gateway.signals.counters import count_request
from gateway.signals.epoch import EPOCH_KEY
from gateway.signals.memory_backend import MemoryCounters
from gateway.signals.rebuild import rebuild
from gateway.signals.redis_backend import RedisCounters
from gateway.signals.thresholds import PlanCache
from tests.conftest import REPO, RULES
from tests.integration.conftest import auth, gateway_settings
from tests.signals.factories import T0, delete, export, later, record, view

CONFIG = SignalsConfig()
DAY = timedelta(days=1)


def requests_for(rules, *records):
    plans = PlanCache()
    out = []
    for rec in records:
        inc = count_event(rec)
        out.append(count_request(inc, rec, plans.plan(rules, inc, rec["operation"])[0]))
    return out


def traffic():
    """Three days of alice: history for the relative rules, distinct records, deletes, a denial."""
    return [
        export(n=300, when=T0 - 2 * DAY),
        export(n=120, when=T0 - DAY),
        record(operation="customers.list", ids=[str(i) for i in range(1, 40)], when=later(0)),
        view(rid=7, when=later(10)),
        delete(n=6, when=later(20)),
        # the loss happens here; these two are counted live afterwards
        export(n=250, when=later(30)),
        record(operation="contacts.view", effect="deny", status=403, when=later(40)),
    ]


def comparable(result):
    return {prefix: (g.windows, g.distinct, g.history_max) for prefix, g in result.groups.items()}, result.increments


async def test_a_rebuild_restores_what_the_loss_took_and_counts_nothing_twice(redis_url, admin, anomaly_rules):
    records = traffic()
    probe = export(n=10, when=later(50))
    memory, counters = MemoryCounters(CONFIG), RedisCounters(connect_redis(redis_url), CONFIG)
    try:
        (reference,) = (await memory.count(requests_for(anomaly_rules, *records, probe)))[-1:]
        await counters.count(requests_for(anomaly_rules, *records[:5]))
        await admin.flushall()
        await counters.count(requests_for(anomaly_rules, *records[5:]))

        report = await rebuild(counters.client, CONFIG, anomaly_rules, records, now=later(3600), since=T0 - 3 * DAY)
        assert (report.replayed, report.skipped, report.users, report.marked) == (5, 2, 1, True)
        again = await rebuild(counters.client, CONFIG, anomaly_rules, records, now=later(3600), since=T0 - 3 * DAY)
        assert (again.replayed, again.skipped) == (0, 7)  # everything is in Redis now, once

        (answer,) = await counters.count(requests_for(anomaly_rules, probe))
        assert comparable(answer) == comparable(reference)
        assert await counters.recent("alice") == await memory.recent("alice")  # newest first, live ones on top
    finally:
        await counters.close()


async def test_records_outside_since_and_without_a_user_are_not_replayed(redis_url, anomaly_rules):
    client = connect_redis(redis_url)
    try:
        records = [
            export(when=T0 - 40 * DAY),
            record(when=later(0)),
            {**record(when=later(1)), "user": None},
            record(when=later(7200)),
        ]
        report = await rebuild(client, CONFIG, anomaly_rules, records, now=later(3600))  # default since: ~32 days
        assert (report.replayed, report.outside, report.uncountable) == (1, 2, 1)
    finally:
        await client.aclose()


async def test_a_rebuild_clears_data_lost_on_every_instance(make_stage, redis_url, admin, anomaly_rules):
    one, two = [await make_stage("redis", redis_url) for _ in range(2)]
    await admin.flushall()
    assert await one.probe() and await two.probe()
    assert one.health()["data_lost"] and two.health()["data_lost"]
    await rebuild(one.client, CONFIG, anomaly_rules, [], now=later(60))
    assert await one.probe() and await two.probe()
    assert not one.health()["data_lost"] and not two.health()["data_lost"]
    epoch = await admin.hgetall(EPOCH_KEY)
    assert (epoch[b"losses"], epoch[b"rebuilt"], epoch[b"rebuilt_records"]) == (b"1", b"1", b"0")


async def test_a_loss_during_the_rebuild_is_not_covered_by_it(redis_url, admin, anomaly_rules):
    def audit_log():  # the data goes again while the audit log is being read
        yield record(when=later(0))
        with redis_sync.Redis.from_url(redis_url) as other:
            other.flushall()
        yield record(when=later(1))

    client = connect_redis(redis_url)
    try:
        report = await rebuild(client, CONFIG, anomaly_rules, audit_log(), now=later(60))
    finally:
        await client.aclose()
    assert report.marked is False and "NOT marked" in report.summary()
    assert await admin.hget(EPOCH_KEY, "rebuilt") is None


@pytest.fixture
async def gateway(aiohttp_client, tmp_path, clock, crm, redis_url):
    """The gateway as deployed: its own signals stage on Redis, its own alert store (journal + Redis)."""
    settings = gateway_settings(
        str(crm.make_url("")).rstrip("/"),
        tmp_path,
        RULES,
        redis_url=redis_url,
        signals={"reconnect_min": 0.05, "reconnect_max": 0.2},
    )
    store, errors = RuleStore.open(RULES)
    assert store is not None, errors
    client = await aiohttp_client(create_app(settings, store, clock=clock))
    return client, client.server.app[GATEWAY], tmp_path / "audit.log"


async def crmgw(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert not err or proc.returncode == 0, err.decode()
    return proc.returncode, out.decode()


@pytest.mark.slow
async def test_flushall_is_alerted_and_a_rebuild_from_the_audit_log_fires_the_thresholds_as_if_nothing_was_lost(
    gateway, redis_url, admin, clock
):
    client, gw, audit_log = gateway
    resp = await client.post("/api/customers/bulk-delete", json={"ids": list(range(1, 13))}, headers=auth("grace"))
    assert resp.status == 200
    await gw.signals.drain()

    await admin.flushall()
    clock.set(clock() + timedelta(seconds=60))
    assert (await client.get("/api/customers", headers=auth("grace"))).status == 200
    await gw.signals.drain()
    health = await (await client.get("/_gw/health")).json()
    assert "signals-data-lost" in health["degraded"] and health["signals"]["data_lost"] is True
    (lost,) = await gw.alerts.list(type="signals-data-lost")
    assert (lost.level, lost.source, lost.evidence["users"]) == ("high", "signals", ["grace"])

    code, out = await crmgw(
        "signals",
        "rebuild",
        "--redis-url",
        redis_url,
        "--rules",
        str(RULES),
        "--audit-log",
        str(audit_log),
        "--since",
        "2026-03-01T00:00:00+00:00",
        "--json",
    )
    report = json.loads(out)
    assert (code, report["replayed"], report["skipped"], report["marked"]) == (
        0,
        1,
        1,
        True,
    )  # the delete; the view was live
    assert await gw.signals.probe()
    health = await (await client.get("/_gw/health")).json()
    assert "signals-data-lost" not in health["degraded"]

    clock.set(clock() + timedelta(seconds=60))
    resp = await client.post("/api/customers/bulk-delete", json={"ids": list(range(13, 25))}, headers=auth("grace"))
    assert resp.status == 200
    await gw.signals.drain()
    (fired,) = await gw.alerts.list(type="mass-delete")
    assert fired.evidence["value"] == 24  # 12 before the loss + 12 now: 24 > 20, as without the loss
    resp = await client.get("/api/customers", headers=auth("grace"))
    assert (resp.status, (await resp.json())["reason"]) == (403, "anomaly-block")


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--since", "2026-03-01T00:00:00"], 2, "needs a UTC offset"),
        (["--since", "yesterday"], 2, "--since"),
        (["--audit-log", "/nonexistent/audit.log"], 1, "no audit log at /nonexistent/audit.log"),
    ],
)
def test_rebuild_usage_errors(args, code, message, tmp_path, capsys):
    base = ["signals", "rebuild", "--redis-url", "redis://127.0.0.1:1/0", "--rules", str(RULES)]
    if "--audit-log" not in args:
        (tmp_path / "audit.log").write_text("")
        args = [*args, "--audit-log", str(tmp_path / "audit.log")]
    assert main(base + args) == code
    assert message in capsys.readouterr().err


def test_rebuild_of_a_memory_backend_is_refused(tmp_path, capsys):
    config = tmp_path / "gateway.yaml"
    settings = gateway_settings(
        "http://127.0.0.1:1", tmp_path, RULES, redis_url="redis://127.0.0.1:1/0", signals={"backend": "memory"}
    )
    config.write_text(json.dumps(settings.model_dump(mode="json", by_alias=True, exclude_defaults=True)))
    (tmp_path / "audit.log").write_text("")
    assert main(["signals", "rebuild", "--config", str(config), "--audit-log", str(tmp_path / "audit.log")]) == 2
    assert "nothing to rebuild" in capsys.readouterr().err
