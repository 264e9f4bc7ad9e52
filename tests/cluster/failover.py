"""What the gateway does while a Redis node it counts into is killed: one request a tick through the
real gateway, its health and the user's counters read before, during and after (the cluster and
sentinel failover tests share it)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from tests.integration.conftest import auth

READ = "/api/customers/1"  # fail mode open: served while counting is down
EXPORT = "/api/customers/export.csv"  # fail mode closed: 503 signals-unavailable while counting is down
TICK = 0.1


@dataclasses.dataclass
class Failover:
    before: set[str] = dataclasses.field(default_factory=set)  # request ids in the user's recent list at the kill
    after: set[str] = dataclasses.field(default_factory=set)  # the same list once counting works again
    recovery_s: float = 0.0  # kill -> a request counted again and health without problems
    dropped: int = 0  # requests not counted meanwhile (the stage's dropped count; metrics say so too)
    problems: set[str] = dataclasses.field(default_factory=set)  # what /_gw/health listed meanwhile
    statuses: dict[str, set[int]] = dataclasses.field(default_factory=dict)  # "user path" -> answers meanwhile

    @property
    def lost(self) -> int:
        """Requests counted before the kill that Redis no longer holds after the failover."""
        return len(self.before - self.after)


async def settle(stage: Any, timeout: float = 10.0) -> None:
    await asyncio.wait_for(stage.drain(), timeout)


async def recent_ids(stage: Any, user: str) -> set[str]:
    return {str(r.get("request_id")) for r in await stage.backend.recent(user)}


async def measure(
    client: Any, stage: Any, user: str, kill: Callable[[], None], *, others: tuple[str, ...] = (), limit: float = 30.0
) -> Failover:
    """Count a few requests of ``user``, ``kill()`` the node, then request (as ``user`` and each of
    ``others``) every TICK until counting works again; the figures of the outage. The stage keeps
    200 recent requests per user (recent_requests) so the outage's requests do not push out the
    ones counted before it."""
    result = Failover()
    for _ in range(3):
        assert (await client.get(READ, headers=auth(user))).status == 200
    await settle(stage)
    result.before = await recent_ids(stage, user)
    assert len(result.before) == 3
    dropped = stage.dropped
    kill()
    start = time.monotonic()
    while time.monotonic() - start < limit:
        for who in (user, *others):
            for path, headers in ((READ, auth(who)), (EXPORT, auth(who, mfa=True))):
                resp = await client.get(path, headers=headers)
                await resp.read()
                result.statuses.setdefault(f"{who} {path}", set()).add(resp.status)
        await settle(stage, limit)
        health = await (await client.get("/_gw/health")).json()
        result.problems.update(health["signals"]["problems"])
        # a data loss stays listed until a rebuild: the link is what must come back
        if not set(health["signals"]["problems"]) - {"signals-data-lost"} and stage.counting_ok:
            # is a new request of the user counted (into the killed node's slots)?
            before = stage.counted
            assert (await client.get(READ, headers=auth(user))).status == 200
            await settle(stage)
            if stage.counted > before and stage.counting_ok:
                result.recovery_s = time.monotonic() - start
                result.dropped = stage.dropped - dropped
                result.after = await recent_ids(stage, user)
                return result
        await asyncio.sleep(TICK)
    raise AssertionError(f"counting did not come back within {limit} s: {result}")
