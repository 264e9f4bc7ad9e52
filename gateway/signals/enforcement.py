"""Blocks and step-ups started by anomaly rules, in force on every gateway instance.

The request path asks :class:`EnforcementState` (a dict; no I/O). Redis is the shared truth:

    impose   local state first (this instance's next request is already refused), then
             HSET crmgw:enforcement <action>:<user> {rule, until}  +  PUBLISH crmgw:enforcement
    listen   every instance applies published measures to its local state as they arrive
    reload   HGETALL at start-up, after a reconnect and every ``reload_interval`` (the backstop
             for a message missed while disconnected); expired entries are pruned there

``until`` is an instant of the gateway clock (epoch seconds); Redis also expires the hash by
itself once the longest measure in it has lapsed, so nothing outlives its TTL.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

import orjson

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

    def to_json(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> "Measure | None":
        try:
            data = orjson.loads(raw)
            m = cls(str(data["user"]), str(data["action"]), str(data["rule"]), float(data["until"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
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

    def lift(self, user: str, action: str) -> None:
        self._by_user.get(user, {}).pop(action, None)

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


class LocalEnforcement:
    """One instance only (memory backend): the local state is all there is."""

    def __init__(self, state: EnforcementState):
        self.state = state

    async def impose(self, m: Measure) -> None:
        self.state.apply(m)

    async def lift(self, user: str, action: str) -> None:
        self.state.lift(user, action)

    async def reload(self, now: float) -> None:
        return None


class RedisEnforcement:
    def __init__(self, client, state: EnforcementState, clock: Callable[[], float]):
        self.client = client
        self.state = state
        self.clock = clock  # epoch seconds on the gateway clock
        self._unsaved: list[Measure] = []  # imposed while Redis was down; stored on the next reload

    async def impose(self, m: Measure) -> None:
        self.state.apply(m)
        try:
            await self._store(m)
        except Exception:
            self._unsaved.append(m)
            raise

    async def _store(self, m: Measure) -> None:
        ttl = max(1, int(m.until - self.clock()) + 1)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(STATE_KEY, f"{m.action}:{m.user}", m.to_json())
        pipe.expire(STATE_KEY, ttl, nx=True)
        pipe.expire(STATE_KEY, ttl, gt=True)
        pipe.publish(CHANNEL, m.to_json())
        await pipe.execute()

    async def lift(self, user: str, action: str) -> None:
        self.state.lift(user, action)
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(STATE_KEY, f"{action}:{user}")
        pipe.publish(CHANNEL, orjson.dumps({"lift": True, "user": user, "action": action}))
        await pipe.execute()

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
        measures, expired = [], []
        for field, value in raw.items():
            m = Measure.from_json(value)
            if m is None or m.until <= now:
                expired.append(field)
            else:
                measures.append(m)
        if expired:
            await self.client.hdel(STATE_KEY, *expired)
        self.state.replace(measures)
