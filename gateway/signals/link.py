"""The signals stage's view of Redis: whether it takes counter writes, and what health says about it.

The state is the process's tracker for the signals' Redis URL (gateway/redishealth.py, handed out by
gateway.redisconn.RedisConnections): ok / unreachable / refusing-writes, fed by the stage (counting,
the supervisor's epoch check) and by every other part on the same Redis (alerts, approvals, access
requests). Only a successful *write* brings it back to ``ok``: a PING is answered by a Redis that
refuses every write (maxmemory reached, issue 11). Both bad states are "degraded": counting is dropped
(and counted as dropped) and operations whose fail mode is ``closed`` are refused 503
``signals-unavailable``.
"""

from __future__ import annotations

from gateway.redishealth import OK, REFUSING, STORAGE_ERRORS, UNREACHABLE, RedisHealth

__all__ = ["OK", "PROBLEMS", "REFUSING", "STORAGE_ERRORS", "UNREACHABLE", "problems"]

# the names /_gw/health lists under "degraded" (the first is the one issue 3 introduced)
PROBLEMS = {UNREACHABLE: "signals-redis-unavailable", REFUSING: "signals-redis-refusing-writes"}


def problems(link: RedisHealth) -> list[str]:
    return [] if link.ok else [PROBLEMS[link.state]]
