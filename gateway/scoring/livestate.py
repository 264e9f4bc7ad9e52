"""The detector's live state, shared by every gateway replica: per user, their open days' audit
records in time order and their history up to the last closed day.

Every replica appends the records it served; whichever replica scores a user replays that user's
records of the open days on top of the stored history through the same aggregator as training
(gateway.scoring.userview), so the features never depend on which replica served which request.
Keys carry the hash tag ``{u:<user>}`` (one Redis Cluster slot per user: the Lua scripts touch
only one user's keys):

    <prefix>:{u:alice}:ev       sorted set: score = epoch ms, member = 16-digit sequence + ":" + JSON
                                (equal milliseconds keep the order the records were appended in)
    <prefix>:{u:alice}:seq      the sequence
    <prefix>:{u:alice}:hist     hash: through_ms (end of the last closed day, -1 none), state (JSON)
    <prefix>:{u:alice}:alerted  hash: day -> highest score alerted (one alert per day and growth)
    <prefix>:{c:DE}:peers       hash: user -> first day they worked from DE (detectors.peers), for
                                countries the model does not already know as common

A day is folded into ``hist`` (and its records removed) once the user's records reach past its end
by the grace period, so late records of the other replicas still count, as in the offline replay.
The history survives gateway restarts; without Redis (no ``redis_url``) :class:`MemoryLiveState`
keeps the same structure in the process (one instance, nothing kept across restarts).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gateway.redisconn import RedisClient

EVENTS_TTL = 4 * 86400  # open days' records: a user idle this long starts again from history
MAX_OPEN_RECORDS = 50_000  # open records kept per user (see _APPEND)
HISTORY_TTL = 120 * 86400
ALERTED_TTL = 3 * 86400
PEERS_TTL = 120 * 86400
NO_DAY = -1  # through_ms before any day was closed live

# A user's open records are bounded (MAX_OPEN_RECORDS): beyond it a record is not kept, only counted
# in KEYS[3] (-1 returned), so one caller's flood (denied requests with long paths, say) cannot grow
# Redis without end. Such a user's live features then fall short of the offline replay's: their
# day is far outside any baseline already, and health says how many records were not kept.
_APPEND = """
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
  return -1
end
local n = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], ARGV[1], string.format('%016d', n) .. ':' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return n
"""
# ARGV: cached through_ms ('' none), cached count, cached last ms. Returns {through, mode, state, m...}:
# mode "tail" = only records after the cached ones (the cache is still exact), "full" = everything.
_FETCH = """
local h = redis.call('HMGET', KEYS[2], 'through_ms', 'state')
local through = h[1] or '-1'
local low = '(' .. through
if ARGV[1] == through then
  local n = redis.call('ZCOUNT', KEYS[1], low, ARGV[3])
  if n == tonumber(ARGV[2]) then
    local out = {through, 'tail', ''}
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], low, '+inf', 'LIMIT', n, -1)) do out[#out + 1] = m end
    return out
  end
end
local out = {through, 'full', h[2] or ''}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], low, '+inf')) do out[#out + 1] = m end
return out
"""
_PERSIST = """
local cur = redis.call('HGET', KEYS[2], 'through_ms') or '-1'
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'through_ms', ARGV[2], 'state', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
return 1
"""
# ARGV: TTL, then user, day pairs: each user's earliest day is kept
_NOTE_PEERS = """
for i = 2, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if not old or ARGV[i + 1] < old then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
_MARK = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and tonumber(ARGV[2]) < tonumber(old) * tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


@dataclasses.dataclass(frozen=True)
class Fetch:
    """What a replica already replayed of a user (None: nothing cached)."""

    user: str
    through_ms: int | None = None
    count: int = 0
    last_ms: int = NO_DAY


@dataclasses.dataclass
class Fetched:
    user: str
    through_ms: int
    full: bool  # False: ``members`` are only the records after the cached ones
    state: bytes | None  # the stored history (full fetches only; None: nothing stored yet)
    members: list[bytes]


class LiveState(Protocol):
    async def append(self, items: list[tuple[str, int, bytes]]) -> None: ...  # (user, ms, JSON)
    async def fetch(self, wanted: list[Fetch]) -> list[Fetched]: ...
    async def persist(self, user: str, expected_through: int, through_ms: int, state: bytes) -> bool: ...
    async def mark_alert(self, user: str, day: str, score: float, factor: float) -> bool: ...
    async def note_peers(self, notes: dict[str, dict[str, str]]) -> None: ...  # country -> user -> day
    async def peers(self, countries: list[str]) -> dict[str, dict[str, str]]: ...
    def describe(self) -> str: ...

    not_kept: int  # records over MAX_OPEN_RECORDS for their user, not kept


def member_json(member: bytes) -> bytes:
    return member[17:]


class RedisLiveState:
    def __init__(self, client: RedisClient, prefix: str = "crmgw:det"):
        self.client, self.prefix = client, prefix
        self.not_kept = 0  # records over MAX_OPEN_RECORDS for their user (see _APPEND)
        self._append = client.register_script(_APPEND)
        self._fetch = client.register_script(_FETCH)
        self._persist = client.register_script(_PERSIST)
        self._mark = client.register_script(_MARK)
        self._note_peers = client.register_script(_NOTE_PEERS)

    def key(self, user: str, what: str) -> str:
        return f"{self.prefix}:{{u:{user}}}:{what}"

    def describe(self) -> str:
        return "redis"

    async def append(self, items: list[tuple[str, int, bytes]]) -> None:
        if not items:
            return
        pipe: Any = self.client.pipeline(transaction=False)  # a Pipeline is a Redis to AsyncScript
        for user, ms, data in items:
            await self._append(
                keys=[self.key(user, "ev"), self.key(user, "seq"), self.key(user, "over")],
                args=[ms, data, EVENTS_TTL, MAX_OPEN_RECORDS],
                client=pipe,
            )
        self.not_kept += sum(1 for n in await pipe.execute() if n == -1)

    async def fetch(self, wanted: list[Fetch]) -> list[Fetched]:
        if not wanted:
            return []
        pipe: Any = self.client.pipeline(transaction=False)
        for w in wanted:
            cached = "" if w.through_ms is None else str(w.through_ms)
            await self._fetch(
                keys=[self.key(w.user, "ev"), self.key(w.user, "hist")], args=[cached, w.count, w.last_ms], client=pipe
            )
        replies: list[Any] = await pipe.execute()
        out = []
        for w, reply in zip(wanted, replies):
            through, mode, state, *members = reply
            out.append(
                Fetched(w.user, int(through), mode == b"full", bytes(state) or None, [bytes(m) for m in members])
            )
        return out

    async def persist(self, user: str, expected_through: int, through_ms: int, state: bytes) -> bool:
        done = await self._persist(
            keys=[self.key(user, "ev"), self.key(user, "hist")],
            args=[str(expected_through), str(through_ms), state, HISTORY_TTL],
        )
        return bool(done)

    async def mark_alert(self, user: str, day: str, score: float, factor: float) -> bool:
        done = await self._mark(keys=[self.key(user, "alerted")], args=[day, repr(score), repr(factor), ALERTED_TTL])
        return bool(done)

    def peers_key(self, country: str) -> str:
        return f"{self.prefix}:{{c:{country}}}:peers"

    async def note_peers(self, notes: dict[str, dict[str, str]]) -> None:
        if not notes:
            return
        pipe: Any = self.client.pipeline(transaction=False)
        for country, users in notes.items():
            args: list[Any] = [PEERS_TTL]
            for user, day in users.items():
                args += [user, day]
            await self._note_peers(keys=[self.peers_key(country)], args=args, client=pipe)
        await pipe.execute()

    async def peers(self, countries: list[str]) -> dict[str, dict[str, str]]:
        if not countries:
            return {}
        pipe: Any = self.client.pipeline(transaction=False)
        for country in countries:
            pipe.hgetall(self.peers_key(country))
        replies: list[Any] = await pipe.execute()
        return {
            c: {bytes(u).decode(): bytes(d).decode() for u, d in reply.items()} for c, reply in zip(countries, replies)
        }


class MemoryLiveState:
    """The same semantics in one process (no Redis configured): one instance, lost on restart."""

    def __init__(self) -> None:
        self.events: dict[str, list[tuple[int, int, bytes]]] = {}
        self.history: dict[str, tuple[int, bytes]] = {}
        self.alerted: dict[tuple[str, str], float] = {}
        self.shared_peers: dict[str, dict[str, str]] = {}
        self.seq = 0
        self.not_kept = 0  # records over MAX_OPEN_RECORDS for their user

    def describe(self) -> str:
        return "memory"

    async def append(self, items: list[tuple[str, int, bytes]]) -> None:
        for user, ms, data in items:
            events = self.events.setdefault(user, [])
            if len(events) >= MAX_OPEN_RECORDS:  # as the Redis script: counted, not kept
                self.not_kept += 1
                continue
            self.seq += 1
            events.append((ms, self.seq, data))

    async def fetch(self, wanted: list[Fetch]) -> list[Fetched]:
        out = []
        for w in wanted:
            through, state = self.history.get(w.user, (NO_DAY, b""))
            events = sorted(e for e in self.events.get(w.user, ()) if e[0] > through)
            members = [b"%016d:" % seq + data for _, seq, data in events]
            if w.through_ms == through and sum(1 for e in events if e[0] <= w.last_ms) == w.count:
                out.append(Fetched(w.user, through, False, None, members[w.count :]))
            else:
                out.append(Fetched(w.user, through, True, state or None, members))
        return out

    async def persist(self, user: str, expected_through: int, through_ms: int, state: bytes) -> bool:
        if self.history.get(user, (NO_DAY, b""))[0] != expected_through:
            return False
        self.history[user] = (through_ms, state)
        self.events[user] = [e for e in self.events.get(user, ()) if e[0] > through_ms]
        return True

    async def mark_alert(self, user: str, day: str, score: float, factor: float) -> bool:
        old = self.alerted.get((user, day))
        if old is not None and score < old * factor:
            return False
        self.alerted[(user, day)] = score
        return True

    async def note_peers(self, notes: dict[str, dict[str, str]]) -> None:
        for country, users in notes.items():
            known = self.shared_peers.setdefault(country, {})
            for user, day in users.items():
                if user not in known or day < known[user]:
                    known[user] = day

    async def peers(self, countries: list[str]) -> dict[str, dict[str, str]]:
        return {c: dict(self.shared_peers.get(c, {})) for c in countries}
