"""Suspensions: the state every instance shares (Redis) and the local view the request path reads.

    suspend   local view first (this instance refuses at once), then one script: the SUSPEND
              script keeps whichever of the stored and the new suspension lasts longer (0: until
              lifted, wins) and publishes it; the local view takes what Redis kept
    lift      Redis first (HDEL + PUBLISH {"lift": true, "user": ...} in one script), then the
              local view: a lift that did not reach Redis lifts nothing (fail closed)
    reload    HGETALL (start-up, after a reconnect, every ``reload_interval``): the backstop for a
              message missed while disconnected; expired entries are pruned by the PRUNE script,
              which deletes a field only while it still holds the expired value it was read with
              (another replica may have suspended the user again in between)

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

    def outlasts(self, other: Suspension) -> bool:
        """At least as long as ``other`` (until lifted outlasts any period)."""
        return self.until == 0.0 or (other.until != 0.0 and self.until >= other.until)

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


@dataclasses.dataclass(frozen=True, slots=True)
class Suspended:
    """What a suspend did: ``kept`` is the suspension in force now; ``earlier`` the one in force
    before (None: there was none). ``kept is earlier`` when the earlier one lasts at least as long."""

    kept: Suspension
    earlier: Suspension | None

    @property
    def kept_earlier(self) -> bool:
        return self.earlier is not None and self.kept == self.earlier


def longer(earlier: Suspension | None, new: Suspension, now: float) -> Suspension:
    """The suspension that stays when ``new`` meets ``earlier``: a second suspend never shortens one."""
    if earlier is not None and earlier.active(now) and earlier.outlasts(new):
        return earlier
    return new


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


# KEYS[1] hash; ARGV: user, new JSON, new until, now, channel. Returns {1|0, earlier JSON or ""}:
# 1 the new one is stored (and published), 0 the earlier active one lasts at least as long: kept.
# (``until`` is a Lua keyword: read with brackets.)
SUSPEND_SCRIPT = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local ok, o = pcall(cjson.decode, old)
  if ok and type(o) == 'table' then
    local ou, nu, now = tonumber(o['until']) or 0, tonumber(ARGV[3]), tonumber(ARGV[4])
    if (ou == 0 or ou > now) and (ou == 0 or (nu ~= 0 and ou >= nu)) then return {0, old} end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[5], ARGV[2])
return {1, old or ''}
"""

LIFT_SCRIPT = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return old
"""

# KEYS[1] hash; ARGV: field, value, field, value, ...: each field is deleted only while it still
# holds the value the reload read (an expired one), never a suspension written since.
PRUNE_SCRIPT = """
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
"""


class SuspensionStore:
    """The shared copy (``client`` None: this process only)."""

    def __init__(self, client: RedisClient | None, state: SuspensionState):
        self.client = client
        self.state = state
        self._suspend = client.register_script(SUSPEND_SCRIPT) if client is not None else None
        self._lift = client.register_script(LIFT_SCRIPT) if client is not None else None
        self._prune = client.register_script(PRUNE_SCRIPT) if client is not None else None

    async def suspend(self, s: Suspension, now: float | None = None) -> Suspended:
        now = s.since if now is None else now  # "now" decides which earlier suspension is still active
        earlier = self.state.get(s.user, now)
        self.state.apply(longer(earlier, s, now))  # this instance refuses at once (never shorter)
        if self._suspend is None:
            return Suspended(longer(earlier, s, now), earlier)
        stored, old = await self._suspend(
            keys=[STATE_KEY], args=[s.user, s.to_json(), repr(s.until), repr(now), CHANNEL]
        )
        previous = Suspension.from_json(old) if old else None
        previous = previous if previous is not None and previous.active(now) else None
        kept = s if int(stored) else previous
        if kept is None:  # an unreadable earlier copy the script kept: should not happen; stay closed
            kept = longer(self.state.get(s.user, now), s, now)
        self.state.apply(kept)
        return Suspended(kept, previous)

    async def lift(self, user: str) -> Suspension | None:
        if self._lift is None:
            return self.state.lift(user)
        # Redis first: when it cannot be reached this raises and the local view keeps refusing.
        old = await self._lift(keys=[STATE_KEY], args=[user, CHANNEL, orjson.dumps({"lift": True, "user": user})])
        local = self.state.lift(user)
        return Suspension.from_json(old) if old is not None else local

    async def active(self, now: float) -> list[Suspension]:
        """In force as Redis holds them (what every instance agrees on); local without Redis."""
        if self.client is None:
            return self.state.all(now)
        raw = await self.client.hgetall(STATE_KEY)
        found = (Suspension.from_json(v) for v in raw.values())
        return sorted((s for s in found if s is not None and s.active(now)), key=lambda s: (s.since, s.user))

    async def reload(self, now: float) -> None:
        if self.client is None or self._prune is None:
            return
        version = self.state.version
        raw = await self.client.hgetall(STATE_KEY)
        keep: list[Suspension] = []
        expired: list[bytes | str] = []
        for field, value in raw.items():
            s = Suspension.from_json(value)
            if s is None or not s.active(now):
                expired += [field, value]
            else:
                keep.append(s)
        if expired:
            await self._prune(keys=[STATE_KEY], args=expired)
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
