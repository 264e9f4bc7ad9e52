"""The Redis script: TTLs on every key, one hash slot per user, one round trip, parity with memory."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from gateway.redisconn import connect_redis
from gateway.signals import SignalsConfig
from gateway.signals.counters import GroupQuery
from gateway.signals.memory_backend import MemoryCounters
from gateway.signals.redis_backend import RedisCounters
from tests.signals.factories import T0, delete, export, later, record, request_for, view

CONFIG = SignalsConfig()
ALL = GroupQuery("g:", ("1m", "5m", "1h", "1d", "7d"), ("1m", "5m", "1h", "1d", "7d"), history=True)


@pytest.fixture
async def redis_counters(redis_url):
    backend = RedisCounters(connect_redis(redis_url), CONFIG)
    yield backend
    await backend.close()


@pytest.fixture
async def admin(redis_url):
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_every_key_has_a_ttl_and_the_users_hash_tag(redis_counters, admin):
    rec = record(operation="customers.list", ids=["1", "2"], when=T0)
    await redis_counters.count([request_for(rec, ALL, GroupQuery("r:customers:", ("1h",)))])
    await redis_counters.count([request_for(view(rid=2, when=later(1)))])
    keys = [k.decode() async for k in admin.scan_iter("*")]
    assert len(keys) > 20
    assert all(k.startswith("crmgw:{u:alice}:") for k in keys)
    ttls = {k: await admin.ttl(k) for k in keys}
    assert all(ttl > 0 for ttl in ttls.values()), [k for k, t in ttls.items() if t <= 0]


async def test_bucket_ttls_cover_their_window_and_the_history(redis_counters, admin):
    await redis_counters.count([request_for(record(when=T0))])
    day = int(T0.timestamp()) // 86400
    assert await admin.ttl(f"crmgw:{{u:alice}}:g:c:10:{int(T0.timestamp()) // 10}") == 70
    assert await admin.ttl(f"crmgw:{{u:alice}}:g:c:86400:{day}") >= 31 * 86400


async def _commands_of(admin, url, action) -> list[str]:
    """Commands sent over the network while ``action`` ran (MONITOR). Commands a script runs inside
    Redis are reported with client type ``lua`` and are not round trips, so they are left out."""
    marker_client = aioredis.from_url(url)
    marker = "end-of-test-" + str(random.random())
    try:
        me = (await marker_client.client_info())["addr"]
        async with admin.monitor() as monitor:
            await action()
            await marker_client.echo(marker)
            seen = []
            while True:
                cmd = await asyncio.wait_for(monitor.next_command(), 5)
                if marker in cmd["command"]:
                    return seen
                who = f"{cmd.get('client_address')}:{cmd.get('client_port')}"
                if cmd.get("client_type") != "lua" and who != me:
                    seen.append(cmd["command"].split()[0].upper())
    finally:
        await marker_client.aclose()


async def test_one_request_is_one_command_on_the_wire(redis_counters, admin, redis_url):
    await redis_counters.count([request_for(record())])  # first use loads the script
    commands = await _commands_of(
        admin, redis_url, lambda: redis_counters.count([request_for(export(when=later(5)), ALL)])
    )
    assert commands == ["EVALSHA"]


async def test_a_batch_is_one_pipeline_of_evalsha_without_script_checks(redis_counters, admin, redis_url):
    await redis_counters.count([request_for(record())])
    batch = [request_for(view(rid=i, when=later(i)), ALL) for i in range(5)]
    commands = await _commands_of(admin, redis_url, lambda: redis_counters.count(batch))
    assert commands == ["EVALSHA"] * 5


async def test_a_flushed_script_cache_is_reloaded_in_a_batch(redis_counters, admin):
    await redis_counters.count([request_for(record())])
    await admin.script_flush()
    results = await redis_counters.count(
        [request_for(record(when=later(i)), GroupQuery("g:", ("1h",))) for i in range(3)]
    )
    assert [r.groups["g:"].windows["1h"]["requests"] for r in results] == [2, 3, 4]


def _traffic():
    """A mixed, deterministic stream: lists, views walking ids, exports, deletes, denials, places."""
    rng = random.Random(7)
    out = []
    for i in range(120):
        when = T0 + timedelta(seconds=i * 47) + timedelta(days=rng.choice([0, 0, 0, -1, -2]))
        user = rng.choice(["alice", "bob"])
        kind = rng.random()
        country, ip = rng.choice([("FR", "198.51.100.7"), ("FR", "198.51.100.9"), ("DE", "203.0.113.5")])
        if kind < 0.3:
            rec = view(user, rid=rng.randint(1, 30), when=when, country=country, ip=ip)
        elif kind < 0.5:
            ids = [str(rng.randint(1, 80)) for _ in range(rng.randint(1, 20))]
            rec = record(user, "customers.list", ids=ids, when=when, country=country, ip=ip)
        elif kind < 0.6:
            rec = export(user, n=rng.randint(10, 300), when=when, ip=ip, country=country)
        elif kind < 0.7:
            rec = delete(user, n=rng.randint(1, 5), when=when)
        elif kind < 0.8:
            rec = record(user, "contacts.view", effect="deny", status=403, when=when)
        else:
            rec = view(user, rid=rng.randint(1, 5), resource="deals", when=when, user_agent=rng.choice(["a", "b"]))
        out.append(rec)
    return out


async def test_memory_backend_answers_like_redis(redis_counters):
    """Exact parity, except HyperLogLog's estimate of distinct records (standard error 0.81%)."""
    memory = MemoryCounters(CONFIG)
    for rec in _traffic():
        res = rec["operation"].partition(".")[0]
        groups = (ALL, GroupQuery(f"r:{res}:", ("5m", "1d"), ("1h",), history=True))
        (from_redis,) = await redis_counters.count([request_for(rec, *groups)])
        (from_memory,) = await memory.count([request_for(rec, *groups)])
        assert (from_redis.flags, from_redis.increments) == (from_memory.flags, from_memory.increments), rec
        for prefix, group in from_redis.groups.items():
            other = from_memory.groups[prefix]
            assert (group.windows, group.history_max) == (other.windows, other.history_max), rec
            for span, (before, after) in group.distinct.items():
                exact = other.distinct[span]
                assert abs(before - exact[0]) <= max(1, exact[0] * 0.02), (span, rec)
                assert abs(after - exact[1]) <= max(1, exact[1] * 0.02), (span, rec)
    assert await redis_counters.recent("bob") == await memory.recent("bob")


async def test_one_users_events_at_one_second_are_one_script_call(redis_counters, admin, redis_url):
    await redis_counters.count([request_for(record())])
    burst = [request_for(view(rid=i, when=later(5)), ALL) for i in range(5)]
    commands = await _commands_of(admin, redis_url, lambda: redis_counters.count(burst))
    assert commands == ["EVALSHA"]


def _bursts():
    """Bursts of up to 8 events of one user at one second, two users interleaved: what a batch of
    a busy gateway holds."""
    rng = random.Random(11)
    out = []
    for i, rec in enumerate(_traffic()):
        second = T0 + timedelta(seconds=(i // 6) * 13)
        rec["time"] = second.isoformat()
        out.append(rec)
    rng.shuffle(out)
    return sorted(out, key=lambda r: r["time"])  # by second; users and kinds mixed within one


async def test_a_batch_counted_in_runs_answers_like_one_event_at_a_time(redis_counters):
    """Runs add the counters once per user and second; every event still gets the answer it would
    get alone: its own flags, increments, distinct counts and window sums up to itself."""
    memory = MemoryCounters(CONFIG)
    records = _bursts()
    reqs = []
    for rec in records:
        res = rec["operation"].partition(".")[0]
        reqs.append(request_for(rec, ALL, GroupQuery(f"r:{res}:", ("5m", "1d"), ("1h",), history=True)))
    from_redis = []
    for start in range(0, len(reqs), 12):  # batches of 12: several runs of each user
        from_redis += await redis_counters.count(reqs[start : start + 12])
    for req, got in zip(reqs, from_redis):
        (want,) = await memory.count([req])
        assert (got.flags, got.increments) == (want.flags, want.increments)
        for prefix, group in got.groups.items():
            other = want.groups[prefix]
            assert (group.windows, group.history_max) == (other.windows, other.history_max), prefix
            for span, (before, after) in group.distinct.items():
                assert abs(before - other.distinct[span][0]) <= max(1, other.distinct[span][0] * 0.02)
                assert abs(after - other.distinct[span][1]) <= max(1, other.distinct[span][1] * 0.02)
    for user in ("alice", "bob"):
        assert await redis_counters.recent(user) == await memory.recent(user)
