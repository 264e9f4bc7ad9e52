"""Where alerts live in Redis, so that several gateway instances (and the CLI) share them.

    crmgw:{alerts}:a:<id>            hash {rev, status, level, json}: the alert
    crmgw:{alerts}:open              hash "<user>\\x1f<type>\\x1f<window>" -> id of the OPEN alert
    crmgw:{alerts}:idx:all           sorted set id -> first-raised epoch (newest first listing)
    crmgw:{alerts}:idx:{status,level,user,type}:<value>   the same, per filter value
    crmgw:{alerts}:events            stream: one entry per change (op, id, rev, status, actor)
    crmgw:{alerts}:replayed:<writer> marker: this writer's journal is in Redis (gone after FLUSHALL)

Every write is one Lua script (``PUT``), so the de-duplication check, the compare-and-set on ``rev``
and the index updates happen atomically across instances. Modes:

    create   refuse ("dup", id) when another alert is already open for the same key
    cas      write only if the stored rev is the one the change was computed from ("conflict")
    replay   write only if newer than the stored copy ("stale"); never displaces another open alert

The ``{alerts}`` hash tag puts every alert key in one Redis Cluster slot: the script is given the
prefix as KEYS[1] (so the cluster client routes it to that slot's master) and builds the other key
names from it, all in the same slot, as Redis Cluster requires of one script. The price is that all
alerts live on one master, which their volume allows. (Before issue 14 the prefix was
``crmgw:alerts:``: on upgrade each writer finds no marker under the new prefix and replays its
journal there; the old keys can be deleted.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from gateway.alerts.model import LEVELS, STATUSES, Alert

if TYPE_CHECKING:
    from gateway.redisconn import RedisClient

PREFIX = "crmgw:{alerts}:"  # hash tag: one cluster slot (see above)
STREAM = PREFIX + "events"
STREAM_MAXLEN = 100_000

PUT = """
local p = KEYS[1]
local mode, id, rev = ARGV[1], ARGV[2], ARGV[3]
local json, status, level, user, atype = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local score, field, expected, is_open = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local op, actor, maxlen = ARGV[13], ARGV[14], ARGV[15]
local akey = p .. 'a:' .. id
local cur = redis.call('HGET', akey, 'rev')
local holder = redis.call('HGET', p .. 'open', field)
local holder_open = false
if holder and holder ~= id then
  local st = redis.call('HGET', p .. 'a:' .. holder, 'status')
  holder_open = (st == 'open' or st == 'acknowledged')
end
if mode == 'create' then
  if holder_open then return {'dup', holder} end
  if cur then return {'exists', cur} end
elseif mode == 'cas' then
  if (cur or '0') ~= expected then return {'conflict', cur or '0'} end
else
  if cur and tonumber(cur) >= tonumber(rev) then return {'stale', cur} end
end
local old = redis.call('HMGET', akey, 'status', 'level')
if old[1] then redis.call('ZREM', p .. 'idx:status:' .. old[1], id) end
if old[2] then redis.call('ZREM', p .. 'idx:level:' .. old[2], id) end
redis.call('HSET', akey, 'rev', rev, 'status', status, 'level', level, 'json', json)
redis.call('ZADD', p .. 'idx:all', score, id)
redis.call('ZADD', p .. 'idx:status:' .. status, score, id)
redis.call('ZADD', p .. 'idx:level:' .. level, score, id)
redis.call('ZADD', p .. 'idx:user:' .. user, score, id)
redis.call('ZADD', p .. 'idx:type:' .. atype, score, id)
if is_open == '1' then
  if not holder_open then redis.call('HSET', p .. 'open', field, id) end
elseif holder == id then
  redis.call('HDEL', p .. 'open', field)
end
redis.call('XADD', p .. 'events', 'MAXLEN', '~', maxlen, '*', 'op', op, 'id', id, 'rev', rev,
           'status', status, 'level', level, 'user', user, 'type', atype, 'actor', actor)
return {'ok', rev}
"""


class Replayed:
    """The replay bookkeeping of a journal mirrored in Redis under ``prefix`` (alerts; approvals and
    access requests: gateway.approvals.mirror): a marker key says this writer's journal is in Redis."""

    def __init__(self, client: RedisClient, writer: str, prefix: str):
        self.client = client
        self.writer = writer
        self.prefix = prefix

    @property
    def marker(self) -> str:
        return self.prefix + "replayed:" + self.writer

    async def probe(self) -> bool:
        """Ping; True when this writer's journal is known to be in Redis (marker present)."""
        await self.client.ping()
        return bool(await self.client.exists(self.marker))

    async def set_marker(self, when: str) -> None:
        await self.client.set(self.marker, when)


class RedisMirror(Replayed):
    def __init__(self, client: RedisClient, writer: str):
        super().__init__(client, writer, PREFIX)
        self._put = client.register_script(PUT)

    async def put(self, alert: Alert, *, mode: str, op: str, actor: str, expected_rev: int = 0) -> tuple[str, str]:
        result = await self._put(
            keys=[PREFIX],
            args=[
                mode,
                alert.id,
                alert.rev,
                orjson.dumps(alert.to_dict()),
                alert.status,
                alert.level,
                alert.user,
                alert.type,
                alert.epoch,
                alert.dedupe_key,
                expected_rev,
                "1" if alert.is_open else "0",
                op,
                actor,
                STREAM_MAXLEN,
            ],
        )
        return text(result[0]), text(result[1])

    async def get(self, alert_id: str) -> Alert | None:
        raw = await self.client.hget(PREFIX + "a:" + alert_id, "json")
        return Alert.model_validate_json(raw) if raw else None

    async def open_alert(self, key: str) -> Alert | None:
        alert_id = await self.client.hget(PREFIX + "open", key)
        if not alert_id:
            return None
        alert = await self.get(text(alert_id))
        return alert if alert is not None and alert.is_open else None

    async def list(
        self,
        *,
        statuses: set[str] | None,
        level: str | None,
        type: str | None,
        user: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        matches: Callable[[Alert], bool],
    ) -> list[Alert]:
        """Newest first: walk the most selective index, filter the rest in Python."""
        if user is not None:
            index = "idx:user:" + user
        elif type is not None:
            index = "idx:type:" + type
        elif level is not None:
            index = "idx:level:" + level
        elif statuses and len(statuses) == 1:
            index = "idx:status:" + next(iter(statuses))
        else:
            index = "idx:all"
        hi: float | str = until.timestamp() if until else "+inf"
        lo: float | str = since.timestamp() if since else "-inf"
        out: list[Alert] = []
        offset, batch = 0, max(limit, 100)
        while len(out) < limit:
            ids = await self.client.zrevrangebyscore(PREFIX + index, hi, lo, start=offset, num=batch)
            if not ids:
                break
            offset += len(ids)
            pipe = self.client.pipeline(transaction=False)
            for i in ids:
                pipe.hget(PREFIX + "a:" + text(i), "json")
            for raw in await pipe.execute():
                if raw:
                    alert = Alert.model_validate_json(raw)
                    if matches(alert):
                        out.append(alert)
        return out[:limit]

    async def counts(self) -> dict[str, Any]:
        pipe = self.client.pipeline(transaction=False)
        for s in STATUSES:
            pipe.zcard(PREFIX + "idx:status:" + s)
        for lv in LEVELS:
            pipe.zcard(PREFIX + "idx:level:" + lv)
        for lv in LEVELS:
            for s in ("open", "acknowledged"):
                pipe.zintercard(2, [PREFIX + "idx:level:" + lv, PREFIX + "idx:status:" + s])
        r = await pipe.execute()
        n = len(STATUSES)
        base = n + len(LEVELS)
        open_by_level = {lv: r[base + 2 * i] + r[base + 2 * i + 1] for i, lv in enumerate(LEVELS)}
        return {
            "by_status": dict(zip(STATUSES, r[:n])),
            "by_level": dict(zip(LEVELS, r[n:base])),
            "open_by_level": open_by_level,
        }


def text(value: object) -> str:
    """A Redis reply (bytes, or str with decode_responses) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)
