"""Lost counter data, told: the epoch key and the per-user markers.

Redis may lose the counters without ever being "down": FLUSHALL, a restart without persistence, a
failover to an empty replica, a cluster shard replaced. Counting then restarts from zero and every
threshold is blind to what came before. Two things notice it:

    crmgw:signals:epoch   hash, no TTL: id (random, made when the counters started), created,
                          checked (last write), losses / lost_at / lost_reason, rebuilt /
                          rebuilt_at / rebuilt_records. Written by the supervisor's check
                          (``EpochWatch.check``: at start-up, after a reconnect, every
                          ``reload_interval``), which is also the write that proves Redis takes
                          writes (gateway/signals/link.py). Missing, or another id, while this
                          instance knew one: the data it held was lost.
    crmgw:{u:<user>}:since  the user's marker, written by the counting script with the counters
                          (gateway/signals/lua.py) and living as long as any of the user's keys.
                          The script says ``fresh`` when it had to create it; for a user this
                          instance counted within that lifetime, that means the user's keys were
                          lost -- noticed on the very request, and also where only part of the
                          data went (one cluster shard).

A loss increments ``losses``; ``crmgw signals rebuild`` sets ``rebuilt`` to the ``losses`` it began
with, so "data lost" is ``losses > rebuilt`` for every instance (a loss during a rebuild stays
visible). A loss while no instance was running looks like a first start: the epoch's ``created``
says when the counters began. The epoch hash has no TTL, so a ``volatile-*`` eviction policy never
takes it; under ``allkeys-*`` an evicted epoch is reported as a loss, which it then probably is.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.clock import Clock

if TYPE_CHECKING:
    from gateway.redisconn import RedisClient
    from gateway.signals.counters import CountRequest, CountResult
    from gateway.signals.sink import AlertArgs

EPOCH_KEY = "crmgw:signals:epoch"
ALERT_TYPE = "signals-data-lost"
PROBLEM = "signals-data-lost"
MAX_REMEMBERED = 200_000  # users whose last count this instance remembers (oldest forgotten first)
MISSING = "the epoch key was missing (FLUSHALL, a restart without persistence, or a failover to an empty replica)"
CHANGED = "the epoch changed under this instance (the counters were re-created after a loss)"

# KEYS[1] epoch; ARGV: known id ('' at first contact), id to create, now (ISO), loss reason ('' none)
EPOCH_SCRIPT = r"""
local k, known, now, reason = KEYS[1], ARGV[1], ARGV[3], ARGV[4]
redis.call('HSET', k, 'checked', now)  -- first, so a Redis that refuses writes refuses this check
local id = redis.call('HGET', k, 'id')
if not id then
  id = ARGV[2]
  redis.call('HSET', k, 'id', id, 'created', now)
  if known ~= '' and reason == '' then reason = 'MISSING' end
elseif known ~= '' and id ~= known and reason == '' and not redis.call('HGET', k, 'losses') then
  reason = 'CHANGED'  -- re-created by an instance that had just started and could not tell
end
if reason ~= '' then
  redis.call('HINCRBY', k, 'losses', 1)
  redis.call('HSET', k, 'lost_at', now, 'lost_reason', reason)
end
return redis.call('HGETALL', k)
""".replace("'MISSING'", repr(MISSING)).replace("'CHANGED'", repr(CHANGED))


# A rebuild begins: the epoch it answers for and its loss count (an epoch missing now is a loss the
# rebuild itself noticed). KEYS[1] epoch; ARGV: id to create, now (ISO)
BEGIN_REBUILD = r"""
local k = KEYS[1]
if not redis.call('HGET', k, 'id') then
  redis.call('HSET', k, 'id', ARGV[1], 'created', ARGV[2], 'lost_at', ARGV[2],
             'lost_reason', 'the epoch key was missing when a rebuild started')
  redis.call('HINCRBY', k, 'losses', 1)
end
return {redis.call('HGET', k, 'id'), redis.call('HGET', k, 'losses') or '0'}
"""
# A rebuild ended: the losses it began with are covered -- unless the epoch was replaced meanwhile
# (lost again during the rebuild). KEYS[1] epoch; ARGV: id, losses, now, records replayed
END_REBUILD = r"""
local k = KEYS[1]
if redis.call('HGET', k, 'id') ~= ARGV[1] then return 0 end
if tonumber(redis.call('HGET', k, 'rebuilt') or '0') < tonumber(ARGV[2]) then
  redis.call('HSET', k, 'rebuilt', ARGV[2])
end
redis.call('HSET', k, 'rebuilt_at', ARGV[3], 'rebuilt_records', ARGV[4])
return 1
"""


def decode(flat: Sequence[bytes | str | int]) -> dict[str, str]:
    """A flat HGETALL-style reply ``[k1, v1, k2, v2, ...]`` as text."""
    text = [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
    return dict(zip(text[::2], text[1::2]))


def is_lost(epoch: dict[str, str]) -> bool:
    return int(epoch.get("losses") or 0) > int(epoch.get("rebuilt") or 0)


@dataclasses.dataclass(frozen=True, slots=True)
class Loss:
    reason: str
    epoch: dict[str, str]
    users: tuple[str, ...] = ()  # users whose keys were found missing (per-user detection)

    def alert(self) -> AlertArgs:
        """Arguments of AlertSink.raise_alert: one open alert per epoch (window), however many
        instances notice it."""
        return {
            "user": "*",
            "type": ALERT_TYPE,
            "level": "high",
            "score": 1.0,
            "rule": ALERT_TYPE,
            "window": self.epoch.get("id", ""),
            "source": "signals",
            "summary": (
                "behaviour counters in Redis were lost: " + self.reason + "; windows count from "
                "zero until `crmgw signals rebuild --audit-log FILE` restores them"
            ),
            "evidence": {
                "reason": self.reason,
                "epoch": dict(self.epoch),
                "users": list(self.users[:20]),
                "users_found": len(self.users),
            },
        }


class EpochWatch:
    """This instance's view of the epoch, and its memory of whom it counted (for the markers)."""

    def __init__(self, client: RedisClient, clock: Clock, marker_ttl: int):
        self.script = client.register_script(EPOCH_SCRIPT)
        self.clock = clock
        self.marker_ms = marker_ttl * 1000
        self.known: str | None = None  # the epoch id this instance counts into
        self.epoch: dict[str, str] = {}
        self._counted: dict[str, int] = {}  # user -> ms of the last event counted (insertion = age)

    @property
    def lost(self) -> bool:
        return is_lost(self.epoch)

    async def check(self, reason: str = "", users: tuple[str, ...] = ()) -> Loss | None:
        """Write the epoch (a write: raises when Redis refuses writes); a Loss when one is noticed
        now: ``reason`` given, or the epoch gone or replaced since this instance last saw it."""
        fresh_id = secrets.token_hex(8)
        raw = await self.script(keys=[EPOCH_KEY], args=[self.known or "", fresh_id, self.clock().isoformat(), reason])
        epoch = decode(raw)
        changed = self.known is not None and epoch.get("id") != self.known
        self.known, self.epoch = epoch.get("id"), epoch
        if reason:
            return Loss(reason, epoch, users)
        if changed:
            return Loss(MISSING if epoch.get("id") == fresh_id else CHANGED, epoch)
        return None

    async def after_count(self, requests: list[CountRequest], results: list[CountResult]) -> Loss | None:
        """After a counting round trip: a Loss when a user this instance counted lost the keys."""
        lost = self.lost_users([(req.user, req.ms, res.fresh) for req, res in zip(requests, results)])
        if not lost or self.lost:  # already known (and alerted); a rebuild covers these users too
            return None
        return await self.check(f"the counters of {len(lost)} user(s) this instance had counted were gone", lost)

    def lost_users(self, counted: list[tuple[str, int, bool]]) -> tuple[str, ...]:
        """Remember who was counted; the users among ``(user, ms, fresh)`` whose marker had to be
        re-created although this instance counted them within the marker's lifetime."""
        lost: list[str] = []
        for user, ms, fresh in counted:
            last = self._counted.pop(user, None)
            if fresh and last is not None and ms - last < self.marker_ms:
                lost.append(user)
            self._counted[user] = ms if last is None else max(ms, last)
        if len(self._counted) > MAX_REMEMBERED:  # forget the older half at once: amortised O(1)
            for user in list(itertools.islice(self._counted, MAX_REMEMBERED // 2)):
                del self._counted[user]
        return tuple(dict.fromkeys(lost))

    def health(self) -> dict[str, Any]:
        keep = (
            "id",
            "created",
            "checked",
            "losses",
            "lost_at",
            "lost_reason",
            "rebuilt",
            "rebuilt_at",
            "rebuilt_records",
        )
        return {k: self.epoch[k] for k in keep if k in self.epoch}
