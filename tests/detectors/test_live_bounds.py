"""One user's live detector state in Redis is bounded (found by review: 5,000 denied requests with
8 KB paths took 51 MB): paths are cut, and records beyond a user's open-record bound are counted,
not kept."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from gateway.scoring import livestate
from gateway.scoring.livestate import MemoryLiveState, RedisLiveState
from gateway.scoring.userview import MAX_PATH, compact


def test_a_long_path_is_cut_in_the_kept_record() -> None:
    record = {"time": "2026-03-03T10:00:00+00:00", "user": "mallory", "path": "/api/" + "x" * 8000}
    kept = orjson.loads(compact(record))
    assert len(kept["path"]) == MAX_PATH and kept["path"].startswith("/api/x")


async def test_records_over_a_users_bound_are_counted_not_kept_in_redis(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(livestate, "MAX_OPEN_RECORDS", 5)
    client = aioredis.from_url(redis_url)
    try:
        state = RedisLiveState(client, prefix="crmgw:test-bounds")
        await client.delete(state.key("mallory", "ev"), state.key("mallory", "over"))
        await state.append([("mallory", 1000 + i, b'{"i":%d}' % i) for i in range(8)])
        await state.append([("alice", 1000, b'{"i":0}')])  # another user is not affected
        assert await client.zcard(state.key("mallory", "ev")) == 5
        assert int(await client.get(state.key("mallory", "over"))) == 3
        assert await client.zcard(state.key("alice", "ev")) == 1
        assert state.not_kept == 3
    finally:
        await client.aclose()


async def test_the_memory_state_keeps_the_same_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(livestate, "MAX_OPEN_RECORDS", 5)
    state = MemoryLiveState()
    await state.append([("mallory", 1000 + i, b"{}") for i in range(8)])
    assert len(state.events["mallory"]) == 5 and state.not_kept == 3
