"""Behaviour counters in Redis, shared by every gateway instance: one round trip per request.

A single queued event is counted with the registered script (EVALSHA, EVAL-loading it once if the
server does not know it); several queued events go out as one pipeline of EVALSHA commands. redis-py's
own pipeline-with-scripts asks ``SCRIPT EXISTS`` before every execute (a second round trip), so the
batch path sends plain EVALSHA and only reloads the script after a NOSCRIPT reply (a Redis restart).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from redis.exceptions import NoScriptError

from gateway.signals.config import SignalsConfig
from gateway.signals.counters import (
    DAY,
    SEEN_KINDS,
    SEQUENCE_TTL,
    TIMESPANS,
    CountRequest,
    CountResult,
    GroupQuery,
    GroupResult,
    bucket_sizes,
    bucket_ttls,
    hll_sizes,
    marker_ttl,
    user_prefix,
)
from gateway.signals.lua import COUNT_SCRIPT

if TYPE_CHECKING:
    from gateway.redisconn import RedisClient


class RedisCounters:
    name = "redis"

    def __init__(self, client: RedisClient, config: SignalsConfig):
        self.client = client
        self.config = config
        self.script = client.register_script(COUNT_SCRIPT)
        self._ttls = bucket_ttls(config.history_days)
        self._keep = config.remember_days * DAY
        self._marker_ttl = marker_ttl(config.history_days, config.remember_days)
        self._specs: dict[tuple[GroupQuery, ...], orjson.Fragment] = {}

    def _group_specs(self, groups: list[GroupQuery]) -> orjson.Fragment:
        """The script's description of the groups, encoded once per distinct group list.

        Why: the groups come from the worker's plan cache, so the same few lists recur on every
        event; rebuilding and re-encoding their bucket sizes and TTLs cost ~40 us an event.
        """
        key = tuple(groups)
        found = self._specs.get(key)
        if found is None:
            found = orjson.Fragment(
                orjson.dumps(
                    [
                        {
                            "p": g.prefix,
                            "gw": [[gran, self._ttls[gran]] for gran in bucket_sizes(g)],
                            "hw": [[gran, self._ttls[gran]] for gran in hll_sizes(g)],
                            "w": [[name, *TIMESPANS[name]] for name in g.windows],
                            "d": [[name, *TIMESPANS[name]] for name in g.distinct],
                            "h": self.config.history_days if g.history else 0,
                        }
                        for g in groups
                    ]
                )
            )
            if len(self._specs) < 4096:
                self._specs[key] = found
        return found

    def _payload(self, req: CountRequest, replay: dict[str, str] | None = None) -> bytes:
        data: dict[str, Any] = {
            "t": req.t,
            "ms": str(req.ms),  # a string: cjson would print a 13-digit number in exponent form
            "mttl": self._marker_ttl,
            "inc": req.increments,
            "groups": self._group_specs(req.groups),
            "rk": req.record_keys,
            "seen": [[SEEN_KINDS[kind], kind, value] for kind, value in req.seen.items()],
            "keep": self._keep,
            "cap": self.config.remember_max,
            "rcap": self.config.recent_requests,
        }
        if req.sequence is not None:
            data["seq"] = {"res": req.sequence[0], "id": req.sequence[1], "ttl": SEQUENCE_TTL}
        if replay is not None:
            data["rp"] = replay  # older than anything live: no recent list (see lua.py)
        elif req.recent is not None:
            data["recent"] = orjson.dumps(req.recent).decode()
        return orjson.dumps(data)

    async def count(self, requests: list[CountRequest]) -> list[CountResult]:
        if not requests:
            return []
        payloads = [self._payload(r) for r in requests]
        prefixes = [user_prefix(r.user) for r in requests]
        if len(requests) == 1:
            replies = [await self.script(keys=[prefixes[0]], args=[payloads[0]])]
        else:
            replies = await self._batch(prefixes, payloads)
        return [_parse(req, reply) for req, reply in zip(requests, replies)]

    async def replay(self, requests: list[CountRequest], *, run: str, until_ms: int) -> list[bool]:
        """Add audit records older than what Redis holds (``crmgw signals rebuild``), one pipeline.

        ``run`` names this rebuild; ``until_ms`` is its start: a user untouched since the loss gets
        every record before it. Answers, per request, whether it was counted (False: counted live).
        """
        if not requests:
            return []
        replay = {"run": run, "lim": str(until_ms)}
        payloads = [self._payload(r, replay) for r in requests]
        replies = await self._batch([user_prefix(r.user) for r in requests], payloads)
        return [int(reply) == 1 for reply in replies]

    async def _batch(self, prefixes: list[str], payloads: list[bytes]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for prefix, payload in zip(prefixes, payloads):
            pipe.evalsha(self.script.sha, 1, prefix, payload)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        for i, reply in enumerate(replies):
            if isinstance(reply, NoScriptError):  # the server lost its script cache: reload once
                replies[i] = await self.script(keys=[prefixes[i]], args=[payloads[i]])
            elif isinstance(reply, Exception):
                raise reply
        return replies

    async def prepare(self) -> None:
        """Load the script (after start-up or a Redis restart) so batches need no NOSCRIPT retry."""
        self.script.sha = await self.client.script_load(COUNT_SCRIPT)

    async def recent(self, user: str) -> list[dict[str, Any]]:
        raw = await self.client.lrange(user_prefix(user) + "recent", 0, self.config.recent_requests - 1)
        return [orjson.loads(item) for item in raw]

    async def close(self) -> None:
        await self.client.aclose()


def _ints(values: dict[str, Any] | None) -> dict[str, int]:
    """A reply's counter map as ints. cjson writes integral Lua numbers as JSON integers, so the
    copy is usually all that is needed; anything else (a float, a string) is converted."""
    if not values:
        return {}
    if all(type(v) is int for v in values.values()):
        return values
    return {k: int(v) for k, v in values.items()}


def _parse(req: CountRequest, reply: bytes | str) -> CountResult:
    # Runs once per counted event on the gateway's event loop: plain loops, no nested comprehensions.
    data = orjson.loads(reply)
    groups = {}
    for query, raw in zip(req.groups, data["groups"]):
        w, d = raw["w"], raw["d"]
        windows = {name: _ints(w.get(name)) for name in query.windows} if query.windows else {}
        distinct = {name: (int(d[name][0]), int(d[name][1])) for name in query.distinct} if query.distinct else {}
        groups[query.prefix] = GroupResult(windows=windows, distinct=distinct, history_max=_ints(raw["h"]))
    return CountResult(flags=_ints(data["flags"]), increments=_ints(data["inc"]), groups=groups, fresh="fresh" in data)
