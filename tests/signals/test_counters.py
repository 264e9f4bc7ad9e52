"""Counting semantics, identical for the Redis script and the in-process backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.redisconn import connect_redis
from gateway.signals import SignalsConfig
from gateway.signals.counters import GroupQuery
from gateway.signals.memory_backend import MemoryCounters
from gateway.signals.redis_backend import RedisCounters
from tests.signals.factories import T0, delete, export, later, record, request_for, view

CONFIG = SignalsConfig(history_days=30, remember_days=28, recent_requests=5)


@pytest.fixture(params=["redis", "memory"])
async def counters(request, redis_server):
    if request.param == "memory":
        yield MemoryCounters(CONFIG)
        return
    import redis.asyncio as aioredis

    url = redis_server[0]
    admin = aioredis.from_url(url)
    await admin.flushdb()
    await admin.aclose()
    backend = RedisCounters(connect_redis(url), CONFIG)
    yield backend
    await backend.close()


async def count_one(counters, rec, *groups):
    (result,) = await counters.count([request_for(rec, *groups)])
    return result


async def test_window_sums_only_the_buckets_of_the_timespan(counters):
    for seconds in (0, 30, 90):
        result = await count_one(counters, record(when=later(seconds)), GroupQuery("g:", ("1m", "5m")))
    assert result.groups["g:"].windows["1m"]["requests"] == 1
    assert result.groups["g:"].windows["5m"]["requests"] == 3


async def test_an_hour_later_the_first_request_has_left_the_1h_window(counters):
    await count_one(counters, record(when=T0))
    result = await count_one(counters, record(when=later(7200)), GroupQuery("g:", ("1h", "1d")))
    assert result.groups["g:"].windows["1h"]["requests"] == 1
    assert result.groups["g:"].windows["1d"]["requests"] == 2


async def test_history_is_the_largest_earlier_day_not_today(counters):
    for day, n in ((-3, 2), (-2, 4), (-1, 1), (0, 9)):
        for _ in range(n):
            await count_one(counters, export(n=10, when=T0 + timedelta(days=day)))
    result = await count_one(counters, export(n=10, when=later(60)), GroupQuery("g:", history=True))
    assert result.groups["g:"].history_max["records_exported"] == 40
    assert result.groups["g:"].history_max["exports"] == 4


async def test_user_and_resource_groups_are_separate(counters):
    await count_one(counters, view(rid=1), GroupQuery("g:"), GroupQuery("r:customers:"))
    result = await count_one(
        counters, view(rid=9, resource="contacts"), GroupQuery("g:", ("1h",)), GroupQuery("r:contacts:", ("1h",))
    )
    assert result.groups["g:"].windows["1h"]["requests"] == 2
    assert result.groups["r:contacts:"].windows["1h"]["requests"] == 1


async def test_distinct_records_counts_each_record_once_before_and_after(counters):
    q = GroupQuery("g:", distinct=("5m",))
    first = await count_one(counters, record(operation="customers.list", ids=[str(i) for i in range(50)]), q)
    second = await count_one(counters, record(operation="customers.list", ids=[str(i) for i in range(40, 60)]), q)
    assert first.groups["g:"].distinct["5m"] == (0, 50)
    assert second.groups["g:"].distinct["5m"] == (50, 60)


@pytest.mark.parametrize(
    "ids, flagged",
    [
        ([5, 6], [0, 1]),
        ([5, 4], [0, 1]),
        ([5, 7], [0, 0]),
        ([5, 6, 8, 7], [0, 1, 0, 2]),  # 7 closes two pairs: 6-7 and 7-8
        ([5, 5], [0, 0]),
        ([1, 3, 2, 4], [0, 0, 2, 1]),  # out of order (two replicas): the same 3 pairs as 1, 2, 3, 4
        ([5, 6, 5, 6], [0, 1, 0, 0]),  # a record viewed again is no step of a walk
    ],
)
async def test_sequential_ids_are_adjacent_pairs_of_viewed_ids(counters, ids, flagged):
    got = []
    for i, rid in enumerate(ids):
        result = await count_one(counters, view(rid=rid, when=later(i)), GroupQuery("g:", ("5m",)))
        got.append(result.flags.get("sequential_ids", 0))
    assert got == flagged
    assert result.groups["g:"].windows["5m"].get("sequential_ids", 0) == sum(flagged)


async def test_sequential_ids_are_per_resource(counters):
    await count_one(counters, view(rid=5))
    result = await count_one(counters, view(rid=6, resource="contacts"))
    assert "sequential_ids" not in result.flags


async def test_first_request_of_a_user_is_not_new_but_a_second_country_is(counters):
    first = await count_one(counters, record(ip="198.51.100.7", country="FR"))
    same = await count_one(counters, record(ip="198.51.100.7", country="FR"))
    other = await count_one(counters, record(ip="203.0.113.9", country="DE", user_agent="curl/8"))
    again = await count_one(counters, record(ip="198.51.100.8", country="FR"))
    assert first.flags == {} and same.flags == {}
    assert other.flags == {"new_ip": 1, "new_network": 1, "new_country": 1, "new_user_agent": 1}
    assert again.flags == {"new_ip": 1}  # same /24 and country as before


async def test_known_values_are_forgotten_after_remember_days(counters):
    await count_one(counters, record(country="FR", when=T0))
    await count_one(counters, record(country="DE", when=T0 + timedelta(days=10)))
    result = await count_one(counters, record(country="FR", when=T0 + timedelta(days=30)))
    assert result.flags.get("new_country") == 1


async def test_flags_are_counted_like_counters(counters):
    await count_one(counters, record(country="FR"))
    result = await count_one(counters, record(country="DE"), GroupQuery("g:", ("1d",)))
    assert result.groups["g:"].windows["1d"]["new_country"] == 1
    assert result.increments["new_country"] == 1


async def test_denials_and_deletes_follow_count_event(counters):
    await count_one(counters, record(effect="deny", status=403, ids=["1"]))
    result = await count_one(counters, delete(n=7), GroupQuery("g:", ("5m",)))
    window = result.groups["g:"].windows["5m"]
    assert (window["denials"], window["records_deleted"], window["deletes"], window["requests"]) == (1, 7, 1, 2)


async def test_recent_requests_are_capped_newest_first(counters):
    recs = [record(when=later(i)) for i in range(8)]
    for rec in recs:
        await count_one(counters, rec)
    recent = await counters.recent("alice")
    assert [r["request_id"] for r in recent] == [r["request_id"] for r in reversed(recs)][:5]


async def test_users_do_not_share_counters(counters):
    await count_one(counters, record(user="bob"))
    result = await count_one(counters, record(user="alice"), GroupQuery("g:", ("1h",)))
    assert result.groups["g:"].windows["1h"]["requests"] == 1


async def test_a_value_seen_again_later_is_remembered_from_its_latest_sighting(counters):
    """The script skips rewriting a value seen in the same second, never one seen again later."""
    for when in (T0, T0, T0 + timedelta(days=20)):
        await count_one(counters, record(country="FR", when=when))
    await count_one(counters, record(country="DE", when=T0 + timedelta(days=25)))
    result = await count_one(counters, record(country="FR", when=T0 + timedelta(days=45)))
    assert "new_country" not in result.flags


async def test_a_late_event_is_in_the_windows_read_after_it(counters):
    """Batches and replicas deliver events late: one written into an earlier bucket of a window is
    in every later read of that window (Redis keeps the earlier buckets' sum cached: it is added
    there too), and its own read sums its own window."""
    q = GroupQuery("g:", ("1m",))
    for seconds in (0, 15, 25):
        await count_one(counters, record(when=later(seconds)), q)
    late = await count_one(counters, record(when=later(5)), q)
    after = await count_one(counters, record(when=later(27)), q)
    assert late.groups["g:"].windows["1m"]["requests"] == 2  # the events at 0 s and 5 s
    assert after.groups["g:"].windows["1m"]["requests"] == 5


async def test_a_window_read_after_a_new_bucket_began_forgets_the_bucket_that_left(counters):
    q = GroupQuery("g:", ("1m",))
    for seconds in (0, 12, 55, 65):  # 10 s buckets, 6 of them: at 65 s the bucket of 0 s has left
        result = await count_one(counters, record(when=later(seconds)), q)
    assert result.groups["g:"].windows["1m"]["requests"] == 3


async def test_a_window_read_is_two_bucket_reads_not_one_per_bucket(redis_server):
    """The earlier buckets' sum is cached per group and bucket size: a 1d window (12 buckets) and
    a 1h window (12 buckets) cost two HGETALLs each (the cached sum, the current bucket), not 24."""
    import redis.asyncio as aioredis

    admin = aioredis.from_url(redis_server[0])
    await admin.flushdb()
    backend = RedisCounters(connect_redis(redis_server[0]), CONFIG)
    q = GroupQuery("g:", ("1h", "1d"))
    try:
        await count_one(backend, record(when=later(0)), q)  # fills the cache
        await admin.config_resetstat()
        result = await count_one(backend, record(when=later(1)), q)
        calls = (await admin.info("commandstats"))["cmdstat_hgetall"]["calls"]
    finally:
        await backend.close()
        await admin.aclose()
    assert result.groups["g:"].windows["1d"]["requests"] == 2
    assert calls == 4


async def test_a_replayed_record_is_in_the_cached_window_sums_read_after_it(redis_server):
    """``crmgw signals rebuild`` writes older buckets under live ones: the cached earlier-bucket
    sums take it in, as a live late event."""
    import redis.asyncio as aioredis

    admin = aioredis.from_url(redis_server[0])
    await admin.flushdb()
    await admin.aclose()
    backend = RedisCounters(connect_redis(redis_server[0]), CONFIG)
    q = GroupQuery("g:", ("1m",))
    try:
        for seconds in (0, 25):  # the read at 25 s caches the sum of the buckets of 0-19 s
            await count_one(backend, record(when=later(seconds)), q)
        (counted,) = await backend.replay([request_for(record(when=later(-5)), q)], run="r1", until_ms=2**62)
        result = await count_one(backend, record(when=later(27)), q)
    finally:
        await backend.close()
    assert counted
    assert result.groups["g:"].windows["1m"]["requests"] == 4
