"""One Redis client and one health tracker per URL (gateway.redisconn.RedisConnections), on the test Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError

from gateway.redisconn import RedisConnections, redacted
from gateway.redishealth import OK, REFUSING, UNREACHABLE, RedisHealth, classify


async def named_connections(url: str, name: str, *, until_none: bool = False) -> list[dict]:
    """The server's connections named ``name``; ``until_none``: wait a moment for closed ones to go."""
    admin = aioredis.from_url(url)
    try:
        for _ in range(100):
            found = [c for c in await admin.client_list() if c.get("name") == name]
            if not (until_none and found):
                return found
            await asyncio.sleep(0.02)
        return found
    finally:
        await admin.aclose()


async def test_one_client_and_one_tracker_per_url_named_and_closed_once(redis_url):
    redis = RedisConnections(client_name="crmgw-test-one")
    client = redis.client(redis_url)
    assert redis.client(redis_url) is client and redis.health(redis_url) is redis.health(redis_url)
    other = redis_url.rsplit("/", 1)[0] + "/1"  # another URL (database 1): its own client and tracker
    assert redis.client(other) is not client and redis.health(other) is not redis.health(redis_url)
    await client.set("k", "v")
    await redis.client(other).ping()
    assert len(await named_connections(redis_url, "crmgw-test-one")) == 2  # one pooled connection each
    await redis.close()
    assert redis.clients == {}
    assert await named_connections(redis_url, "crmgw-test-one", until_none=True) == []
    await redis.close()  # closing again has nothing left to close


def test_a_tracker_is_ok_only_after_a_write_and_tells_listeners_of_changes():
    tracker = RedisHealth()
    seen: list[bool] = []
    tracker.listen(seen.append)
    assert (tracker.state, tracker.ok, tracker.connected, tracker.outages) == (UNREACHABLE, False, False, 0)
    tracker.wrote()
    assert (tracker.state, tracker.last_write is not None, seen) == (OK, True, [True])
    tracker.failed(OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'."))
    assert (tracker.state, tracker.connected, tracker.outages) == (REFUSING, True, 1)
    assert tracker.last_error is not None and tracker.last_error.startswith("OutOfMemoryError")
    tracker.failed(RedisConnectionError("refused"))  # still not ok: no new outage, no new notice
    assert (tracker.state, tracker.outages, seen) == (UNREACHABLE, 1, [True, False])
    tracker.wrote()
    assert (tracker.state, tracker.outages, seen) == (OK, 1, [True, False, True])


def test_errors_are_classified_by_whether_redis_answered():
    assert classify(RedisConnectionError("reset")) == UNREACHABLE
    assert classify(TimeoutError()) == UNREACHABLE
    assert classify(OSError("no route")) == UNREACHABLE
    assert classify(ReadOnlyError("READONLY You can't write against a read only replica.")) == REFUSING


def test_urls_are_logged_without_their_password():
    assert redacted("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redacted("redis://gw:s3cret@redis:6379/0") == "redis://gw:***@redis:6379/0"
    assert redacted("redis://redis:6379/0") == "redis://redis:6379/0"
