"""Behaviour counters in Redis, shared by every gateway instance: one round trip per request.

Queued events are grouped in runs (``runs_of``: one user, one second, the same groups), one script
call each (gateway/signals/lua.py). A single run is counted with the registered script (EVALSHA,
EVAL-loading it once if the server does not know it); several go out as one pipeline of EVALSHA
commands. redis-py's own pipeline-with-scripts asks ``SCRIPT EXISTS`` before every execute (a second
round trip), so the batch path sends plain EVALSHA and only reloads the script after a NOSCRIPT
reply (a Redis restart).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from redis.exceptions import NoScriptError

from gateway.signals.config import SignalsConfig
from gateway.signals.counters import (
    DAY,
    SEEN_KINDS,
    SEQUENCE_CAP,
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

# Events of one user counted by one script call at most (see runs_of).
MAX_RUN = 64


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

    def _event(self, req: CountRequest, live: bool = True) -> dict[str, Any]:
        """What the script is told of one event: the request's own part of a payload, and an item
        of a run's ``more`` (lua.py)."""
        data: dict[str, Any] = {
            "ms": str(req.ms),  # a string: cjson would print a 13-digit number in exponent form
            "inc": req.increments,
            "rk": req.record_keys,
            "seen": [[SEEN_KINDS[kind], kind, value] for kind, value in req.seen.items()],
        }
        if req.sequence is not None:
            # ids as text, computed here: Lua's numbers would print a long id in exponent form
            rid = req.sequence[1]
            data["seq"] = {
                "res": req.sequence[0],
                "id": str(rid),
                "nb": [str(rid - 1), str(rid + 1)],
                "ttl": SEQUENCE_TTL,
                "cap": SEQUENCE_CAP,
            }
        if live and req.recent is not None:  # replayed records are older: no recent list (lua.py)
            data["recent"] = orjson.dumps(req.recent).decode()
        return data

    def _payload(
        self, req: CountRequest, replay: dict[str, str] | None = None, more: Sequence[CountRequest] = ()
    ) -> bytes:
        data = self._event(req, live=replay is None)
        data["t"] = req.t
        data["mttl"] = self._marker_ttl
        data["groups"] = self._group_specs(req.groups)
        data["keep"] = self._keep
        data["cap"] = self.config.remember_max
        data["rcap"] = self.config.recent_requests
        if replay is not None:
            data["rp"] = replay
        if more:
            data["more"] = [self._event(r) for r in more]
        return orjson.dumps(data)

    async def count(self, requests: list[CountRequest]) -> list[CountResult]:
        if not requests:
            return []
        runs = runs_of(requests)
        firsts = [requests[run[0]] for run in runs]
        payloads = [self._payload(first, more=[requests[i] for i in run[1:]]) for first, run in zip(firsts, runs)]
        prefixes = [user_prefix(first.user) for first in firsts]
        if len(runs) == 1:
            replies = [await self.script(keys=[prefixes[0]], args=[payloads[0]])]
        else:
            replies = await self._batch(prefixes, payloads)
        results: list[CountResult | None] = [None] * len(requests)
        for run, reply in zip(runs, replies):
            for i, result in zip(run, _parse_run([requests[i] for i in run], reply)):
                results[i] = result
        return [r for r in results if r is not None]

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


def runs_of(requests: list[CountRequest]) -> list[list[int]]:
    """The requests (by index) in runs the script counts at once: events of one user at the same
    second with the same groups, in arrival order (another user's events in between do not
    matter: their keys are apart). A user's runs keep that user's order; each run has at most
    ``MAX_RUN`` events (bounds the script's time, as a batch of single events would be)."""
    runs: list[list[int]] = []
    latest: dict[str, int] = {}  # user -> their latest run
    for i, req in enumerate(requests):
        j = latest.get(req.user)
        if j is not None and len(runs[j]) < MAX_RUN:
            first = requests[runs[j][0]]
            if first.t == req.t and (first.groups is req.groups or first.groups == req.groups):
                runs[j].append(i)
                continue
        latest[req.user] = len(runs)
        runs.append([i])
    return runs


def _minus(total: dict[str, int], later: dict[str, int]) -> dict[str, int]:
    """A window's sums before the run's later events (fields they alone brought are left out)."""
    if not later:
        return total
    out = dict(total)  # a C-speed copy; ``later`` holds the few counters a request moves
    for k, v in later.items():
        left = out.get(k, 0) - v
        if left:
            out[k] = left
        else:
            out.pop(k, None)
    return out


def _parse_run(reqs: list[CountRequest], reply: bytes | str) -> list[CountResult]:
    """Each event's answer from a run's reply: its flags, increments and distinct counts as the
    script gave them, its window sums = the run's minus what the events after it added."""
    # Runs once per counted event on the gateway's event loop: what is the same for every event of
    # the run (each group's prefix, window sums, distinct names, history) is read once, up front.
    data = orjson.loads(reply)
    shapes = []
    for query, raw in zip(reqs[0].groups, data["groups"]):
        w = raw["w"]
        ends = [(name, _ints(w.get(name))) for name in query.windows]
        shapes.append((query.prefix, ends, query.distinct, _ints(raw["h"])))
    if len(shapes) < len(reqs[0].groups):  # a reply short of a group is refused, as it always was
        raise IndexError(f"the script answered {len(shapes)} of {len(reqs[0].groups)} groups")
    events = data["ev"]
    results: list[CountResult] = []
    later: dict[str, int] = {}
    for i in range(len(reqs) - 1, -1, -1):
        ev = events[i]
        increments = _ints(ev["inc"])
        ds = ev["d"]
        groups = {}
        for gi, (prefix, ends, names, history) in enumerate(shapes):
            d = ds[gi]
            windows = {name: _minus(sums, later) for name, sums in ends}
            distinct = {name: (int(d[name][0]), int(d[name][1])) for name in names} if names else {}
            groups[prefix] = GroupResult(windows=windows, distinct=distinct, history_max=history)
        fresh = i == 0 and "fresh" in data  # the run's first event created the marker, if anyone
        results.append(CountResult(flags=_ints(ev["flags"]), increments=increments, groups=groups, fresh=fresh))
        for k, v in increments.items():
            later[k] = later.get(k, 0) + v
    results.reverse()
    return results
