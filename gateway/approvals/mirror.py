"""Where approvals live in Redis, so that every gateway instance (and the CLI) shares them.

    crmgw:{approvals}:a:<id>             hash {rev, status, expires, json}: the approval
    crmgw:{approvals}:fp:<fingerprint>   id of the newest approval for that request
    crmgw:{approvals}:idx                sorted set id -> created epoch (newest first listing)
    crmgw:{approvals}:replayed:<writer>  marker: this writer's journal is in Redis (gone after FLUSHALL)

The hash tag keeps every key of a prefix in one Redis Cluster slot; the script gets the prefix as
KEYS[1] (gateway/alerts/redis_mirror.py says why).

Every write is one Lua script, so the checks and the write are atomic across instances:

    create   refuse ("dup", id) while the request's newest approval still stands (pending,
             approved or rejected and within its validity): one pending approval per request;
             the new one becomes the request's newest (``fp:``)
    cas      write only if the stored rev is the one the change was computed from ("conflict"):
             two instances consuming one approval -> exactly one wins
    replay   write only if newer than the stored copy ("stale")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

import orjson

from gateway.alerts.model import parse_time
from gateway.alerts.redis_mirror import Replayed, text
from gateway.approvals.model import Versioned

if TYPE_CHECKING:
    from gateway.redisconn import RedisClient

R = TypeVar("R", bound=Versioned)
PREFIX = "crmgw:{approvals}:"

PUT = """
local p = KEYS[1]
local mode, id, rev, json = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local status, fp, expected, score = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local expires, now = ARGV[9], tonumber(ARGV[10])
local akey = p .. 'a:' .. id
local cur = redis.call('HGET', akey, 'rev')
local holder = redis.call('GET', p .. 'fp:' .. fp)
if mode == 'create' then
  if holder and holder ~= id then
    local h = redis.call('HMGET', p .. 'a:' .. holder, 'status', 'expires')
    if h[1] and (h[1] == 'pending' or h[1] == 'approved' or h[1] == 'rejected') and tonumber(h[2]) > now then
      return {'dup', holder}
    end
  end
  if cur then return {'exists', cur} end
elseif mode == 'cas' then
  if (cur or '0') ~= expected then return {'conflict', cur or '0'} end
else
  if cur and tonumber(cur) >= tonumber(rev) then return {'stale', cur} end
end
redis.call('HSET', akey, 'rev', rev, 'status', status, 'expires', expires, 'json', json)
redis.call('ZADD', p .. 'idx', score, id)
if mode == 'create' or not holder or (mode == 'replay' and holder < id) then
  redis.call('SET', p .. 'fp:' .. fp, id)
end
return {'ok', rev}
"""


class ApprovalMirror(Replayed, Generic[R]):
    """The mirror of approvals, and of other versioned records (gateway.access) under their own
    ``prefix``: ``model`` is the record's class (gateway.approvals.model.Versioned)."""

    def __init__(self, client: RedisClient, writer: str, *, model: type[R], prefix: str = PREFIX):
        super().__init__(client, writer, prefix)
        self.model = model
        self._put = client.register_script(PUT)

    async def put(self, a: R, *, mode: str, expected_rev: int = 0, now: float = 0.0) -> tuple[str, str]:
        result = await self._put(
            keys=[self.prefix],
            args=[
                mode,
                a.id,
                a.rev,
                orjson.dumps(a.to_dict()),
                a.status,
                a.fingerprint,
                expected_rev,
                a.epoch,
                parse_time(a.expires_at).timestamp(),
                now,
            ],
        )
        return text(result[0]), text(result[1])

    async def get(self, approval_id: str) -> R | None:
        raw = await self.client.hget(self.prefix + "a:" + approval_id, "json")
        return self.model.model_validate_json(raw) if raw else None

    async def for_fingerprint(self, fp: str) -> R | None:
        approval_id = await self.client.get(self.prefix + "fp:" + fp)
        return await self.get(text(approval_id)) if approval_id else None

    async def newest(self, limit: int) -> list[R]:
        ids = await self.client.zrevrange(self.prefix + "idx", 0, limit - 1)
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for i in ids:
            pipe.hget(self.prefix + "a:" + text(i), "json")
        return [self.model.model_validate_json(raw) for raw in await pipe.execute() if raw]
