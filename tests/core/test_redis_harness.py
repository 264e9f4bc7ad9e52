"""The test harness gives every test a real, empty redis-server over a real connection."""

import redis.asyncio as aioredis


async def test_redis_is_real_and_flushed_per_test(redis_url):
    client = aioredis.from_url(redis_url)
    try:
        assert await client.dbsize() == 0
        await client.set("harness", "1")
        info = await client.info("server")
        assert info["redis_version"] and info["tcp_port"]
    finally:
        await client.aclose()
