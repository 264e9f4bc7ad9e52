"""Row reservations shared by a user's streams in flight (gateway.signals.reservations): granted
atomically up to a limit, given back, never below zero; Redis and the memory store alike."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.signals import reservations

KEY = reservations.reservation_key("alice", "r1")


def test_the_key_is_in_the_users_cluster_slot():
    assert KEY == "crmgw:{u:alice}:resv:r1"


@pytest.fixture(params=["redis", "memory"])
async def store(request, redis_url):
    if request.param == "memory":
        yield reservations.MemoryReservations()
        return
    client = aioredis.from_url(redis_url)
    try:
        yield reservations.RedisReservations(client)
    finally:
        await client.aclose()


async def test_concurrent_reservations_never_exceed_the_limit(store):
    grants = await asyncio.gather(*(store.reserve(KEY, 7, 100) for _ in range(50)))
    assert sum(grants) == 100 and await store.held(KEY) == 100
    assert await store.reserve(KEY, 7, 100) == 0


async def test_a_release_gives_rows_back_and_never_goes_below_zero(store):
    assert await store.reserve(KEY, 60, 100) == 60
    await store.release(KEY, 25)
    assert await store.held(KEY) == 35
    assert await store.reserve(KEY, 100, 100) == 65
    await store.release(KEY, 1000)  # more than held (the key expired and was taken again meanwhile)
    assert await store.held(KEY) == 0


async def test_a_reservation_takes_the_smallest_grant_over_its_rules(store):
    keys = [KEY, reservations.reservation_key("alice", "r2")]

    async def limits() -> list[int]:
        return [100, 30]

    resv = reservations.Reservation(store, keys, limits)
    assert await resv.take(50) == 30 and resv.granted == 30
    assert [await store.held(k) for k in keys] == [30, 30]  # the excess under r1 given back
    await resv.release()
    assert [await store.held(k) for k in keys] == [0, 0]
