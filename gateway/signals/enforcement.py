"""Blocks and step-ups started by anomaly rules, in force on every gateway instance.

The request path asks :class:`EnforcementState` (a dict; no I/O). Redis is the shared truth:

    impose   local state first (this instance's next request is already refused), then
             HSET crmgw:enforcement <action>:<user> {rule, until}  +  PUBLISH crmgw:enforcement
             (one script; in a Redis Cluster a PUBLISH reaches the subscribers on every node)
    listen   every instance applies published measures to its local state as they arrive
    reload   HGETALL at start-up, after a reconnect and every ``reload_interval`` (the backstop
             for a message missed while disconnected); expired entries are pruned there
    lift     an analyst's decision (gateway/signals/blocks.py): one script takes the entry out of
             the hash and publishes ``{"lift": ...}``, so every instance drops it at once
    alert    once the alert sink answers, the measure is re-stored naming the alert that records
             it (compare-and-set: a measure lifted meanwhile is not brought back)

``until`` is an instant of the gateway clock (epoch seconds); Redis also expires the hash by
itself once the longest measure in it has lapsed, so nothing outlives its TTL.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import orjson

if TYPE_CHECKING:
    from gateway.redisconn import RedisClient

log = logging.getLogger("crmgw.signals")

CHANNEL = "crmgw:enforcement"
STATE_KEY = "crmgw:enforcement"
ACTIONS = ("block", "step_up")


@dataclasses.dataclass(frozen=True, slots=True)
class Measure:
    user: str
    action: str  # block | step_up
    rule: str
    until: float  # epoch seconds on the gateway clock
    since: float = 0.0  # when it was imposed (0: unknown, stored before this field existed)
    alert: str = ""  # the alert that records it ("" until the alert sink answered, or none)

    def to_json(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Measure | None:
        try:
            data = orjson.loads(raw)
            m = cls(
                str(data["user"]),
                str(data["action"]),
                str(data["rule"]),
                float(data["until"]),
                float(data.get("since") or 0.0),
                str(data.get("alert") or ""),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return None
        return m if m.action in ACTIONS else None


class EnforcementState:
    """The measures in force as this instance knows them; read on every request, no I/O."""

    def __init__(self) -> None:
        self._by_user: dict[str, dict[str, Measure]] = {}

    def active(self, user: str, now: float) -> dict[str, Measure]:
        measures = self._by_user.get(user)
        if not measures:
            return {}
        return {a: m for a, m in measures.items() if m.until > now}

    def apply(self, m: Measure) -> None:
        current = self._by_user.setdefault(m.user, {}).get(m.action)
        if current is None or m.until >= current.until:
            self._by_user[m.user][m.action] = m

    def lift(self, user: str, action: str) -> Measure | None:
        return self._by_user.get(user, {}).pop(action, None)

    def annotate(self, old: Measure, new: Measure) -> bool:
        """Replace ``old`` by ``new`` only if ``old`` is still the measure in force (not lifted)."""
        measures = self._by_user.get(old.user, {})
        if measures.get(old.action) != old:
            return False
        measures[old.action] = new
        return True

    def all(self, now: float) -> list[Measure]:
        return sorted(
            (m for measures in self._by_user.values() for m in measures.values() if m.until > now),
            key=lambda m: (m.since, m.user, m.action),
        )

    def replace(self, measures: list[Measure]) -> None:
        fresh: dict[str, dict[str, Measure]] = {}
        for m in measures:
            fresh.setdefault(m.user, {})[m.action] = m
        self._by_user = fresh

    def summary(self, now: float) -> dict[str, int]:
        out = dict.fromkeys(ACTIONS, 0)
        for measures in self._by_user.values():
            for action, m in measures.items():
                if m.until > now:
                    out[action] += 1
        return out


class Enforcement(Protocol):
    """Where measures are imposed and lifted: this process only (LocalEnforcement) or Redis."""

    async def impose(self, m: Measure) -> None: ...
    async def lift(self, user: str, action: str) -> Measure | None: ...
    async def attach_alert(self, m: Measure, alert_id: str) -> bool: ...
    async def active(self, now: float) -> list[Measure]: ...
    async def reload(self, now: float) -> None: ...


class LocalEnforcement:
    """One instance only (memory backend): the local state is all there is."""

    def __init__(self, state: EnforcementState):
        self.state = state

    async def impose(self, m: Measure) -> None:
        self.state.apply(m)

    async def lift(self, user: str, action: str) -> Measure | None:
        return self.state.lift(user, action)

    async def attach_alert(self, m: Measure, alert_id: str) -> bool:
        return self.state.annotate(m, dataclasses.replace(m, alert=alert_id))

    async def active(self, now: float) -> list[Measure]:
        return self.state.all(now)

    async def reload(self, now: float) -> None:
        return None


# KEYS[1] the hash; ARGV: field, measure (JSON), TTL seconds, channel. One script rather than a MULTI
# pipeline: PUBLISH names no key, and a Redis Cluster transaction cannot route a keyless command.
STORE_SCRIPT = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3], 'NX')
redis.call('EXPIRE', KEYS[1], ARGV[3], 'GT')
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 1
"""
# KEYS[1] the hash; ARGV: field, channel, lift message. Returns the stored value (nil: none was).
# The lift is published even when the hash had no entry: an instance may still hold it locally.
LIFT_SCRIPT = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return old
"""
# KEYS[1] the hash; ARGV: field, expected value, new value, channel. 1 when replaced.
ANNOTATE_SCRIPT = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[3])
return 1
"""


class RedisEnforcement:
    def __init__(self, client: RedisClient, state: EnforcementState, clock: Callable[[], float]):
        self.client = client
        self.state = state
        self.clock = clock  # epoch seconds on the gateway clock
        self._unsaved: list[Measure] = []  # imposed while Redis was down; stored on the next reload
        self._store_script = client.register_script(STORE_SCRIPT)
        self._lift = client.register_script(LIFT_SCRIPT)
        self._annotate = client.register_script(ANNOTATE_SCRIPT)

    async def impose(self, m: Measure) -> None:
        self.state.apply(m)
        try:
            await self._store(m)
        except Exception:
            self._unsaved.append(m)
            raise

    async def _store(self, m: Measure) -> None:
        ttl = max(1, int(m.until - self.clock()) + 1)
        await self._store_script(keys=[STATE_KEY], args=[f"{m.action}:{m.user}", m.to_json(), ttl, CHANNEL])

    async def lift(self, user: str, action: str) -> Measure | None:
        """Lift on every instance; the measure that was stored in Redis (None: there was none)."""
        local = self.state.lift(user, action)
        self._unsaved = [m for m in self._unsaved if (m.user, m.action) != (user, action)]
        old = await self._lift(
            keys=[STATE_KEY],
            args=[f"{action}:{user}", CHANNEL, orjson.dumps({"lift": True, "user": user, "action": action})],
        )
        return Measure.from_json(old) if old is not None else local

    async def attach_alert(self, m: Measure, alert_id: str) -> bool:
        """Name the alert that records ``m``, unless ``m`` was lifted or replaced meanwhile."""
        new = dataclasses.replace(m, alert=alert_id)
        self.state.annotate(m, new)
        self._unsaved = [new if u == m else u for u in self._unsaved]
        return bool(
            await self._annotate(keys=[STATE_KEY], args=[f"{m.action}:{m.user}", m.to_json(), new.to_json(), CHANNEL])
        )

    async def active(self, now: float) -> list[Measure]:
        """Every measure in force as Redis holds it (what all instances agree on)."""
        raw = await self.client.hgetall(STATE_KEY)
        found = (Measure.from_json(value) for value in raw.values())
        return sorted((m for m in found if m is not None and m.until > now), key=lambda m: (m.since, m.user, m.action))

    def on_message(self, data: bytes) -> None:
        """A published measure (or lift) from any instance, this one included."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning("ignoring malformed enforcement message")
            return
        if isinstance(payload, dict) and payload.get("lift"):
            self.state.lift(str(payload.get("user")), str(payload.get("action")))
            return
        m = Measure.from_json(data)
        if m is not None:
            self.state.apply(m)

    async def reload(self, now: float) -> None:
        while self._unsaved:
            m = self._unsaved[0]
            if m.until > now:
                await self._store(m)
            self._unsaved.pop(0)
        raw = await self.client.hgetall(STATE_KEY)
        measures: list[Measure] = []
        expired: list[bytes | str] = []
        for field, value in raw.items():
            stored = Measure.from_json(value)
            if stored is None or stored.until <= now:
                expired.append(field)
            else:
                measures.append(stored)
        if expired:
            await self.client.hdel(STATE_KEY, *expired)
        self.state.replace(measures)
