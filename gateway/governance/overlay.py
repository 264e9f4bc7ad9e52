"""Suspensions: the state every instance shares (Redis) and the local view the request path reads.

    suspend   local view first (this instance refuses at once), then
              HSET crmgw:governance:suspended <user> {...}  +  PUBLISH crmgw:governance {...}
    lift      HDEL + PUBLISH {"lift": true, "user": ...} in one script: every instance drops it
    reload    HGETALL (start-up, after a reconnect, every ``reload_interval``): the backstop for a
              message missed while disconnected; expired entries are pruned there

Without Redis (one instance) the local view is all there is.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from gateway.redisconn import RedisClient

CHANNEL = "crmgw:governance"
STATE_KEY = "crmgw:governance:suspended"
MAX_NOTE = 2000


@dataclasses.dataclass(frozen=True, slots=True)
class Suspension:
    user: str
    actor: str
    note: str
    since: float  # epoch seconds
    until: float = 0.0  # 0: until lifted
    alert: str = ""  # the alert it was decided from, if any

    def active(self, now: float) -> bool:
        return self.until == 0.0 or self.until > now

    def to_json(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Suspension | None:
        try:
            d = orjson.loads(raw)
            return cls(
                str(d["user"]),
                str(d["actor"]),
                str(d.get("note") or ""),
                float(d["since"]),
                float(d.get("until") or 0.0),
                str(d.get("alert") or ""),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


class SuspensionState:
    """Who is suspended, as this instance knows it; read on every request (a dict lookup)."""

    def __init__(self) -> None:
        self._by_user: dict[str, Suspension] = {}
        self.version = 0  # bumped by every local change: a reload read before it must not undo it

    def get(self, user: str, now: float) -> Suspension | None:
        s = self._by_user.get(user)
        return s if s is not None and s.active(now) else None

    def apply(self, s: Suspension) -> None:
        self.version += 1
        self._by_user[s.user] = s

    def lift(self, user: str) -> Suspension | None:
        self.version += 1
        return self._by_user.pop(user, None)

    def replace(self, found: list[Suspension]) -> None:
        self._by_user = {s.user: s for s in found}

    def all(self, now: float) -> list[Suspension]:
        return sorted((s for s in self._by_user.values() if s.active(now)), key=lambda s: (s.since, s.user))


LIFT_SCRIPT = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return old
"""


class SuspensionStore:
    """The shared copy (``client`` None: this process only)."""

    def __init__(self, client: RedisClient | None, state: SuspensionState):
        self.client = client
        self.state = state
        self._lift = client.register_script(LIFT_SCRIPT) if client is not None else None

    async def suspend(self, s: Suspension) -> None:
        self.state.apply(s)
        if self.client is None:
            return
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(STATE_KEY, s.user, s.to_json())
        pipe.publish(CHANNEL, s.to_json())
        await pipe.execute()

    async def lift(self, user: str) -> Suspension | None:
        local = self.state.lift(user)
        if self._lift is None:
            return local
        old = await self._lift(keys=[STATE_KEY], args=[user, CHANNEL, orjson.dumps({"lift": True, "user": user})])
        return Suspension.from_json(old) if old is not None else local

    async def active(self, now: float) -> list[Suspension]:
        """In force as Redis holds them (what every instance agrees on); local without Redis."""
        if self.client is None:
            return self.state.all(now)
        raw = await self.client.hgetall(STATE_KEY)
        found = (Suspension.from_json(v) for v in raw.values())
        return sorted((s for s in found if s is not None and s.active(now)), key=lambda s: (s.since, s.user))

    async def reload(self, now: float) -> None:
        if self.client is None:
            return
        version = self.state.version
        raw = await self.client.hgetall(STATE_KEY)
        keep: list[Suspension] = []
        expired: list[bytes | str] = []
        for field, value in raw.items():
            s = Suspension.from_json(value)
            if s is None or not s.active(now):
                expired.append(field)
            else:
                keep.append(s)
        if expired:
            await self.client.hdel(STATE_KEY, *expired)
        if self.state.version == version:  # else a change raced this read: the next reload settles it
            self.state.replace(keep)

    def on_message(self, data: bytes) -> None:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if isinstance(payload, dict) and payload.get("lift"):
            self.state.lift(str(payload.get("user")))
            return
        s = Suspension.from_json(data)
        if s is not None:
            self.state.apply(s)
