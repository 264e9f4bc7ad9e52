"""GovernanceGuard: the request path's check for suspended users, and its background watch.

``check`` reads the local view only (a dict lookup, no I/O): it is asked on every request right
after the identity stage (gateway/pipeline.py), so a suspended user's next request is refused
``403 user-suspended`` before any rule runs. The view is kept fresh by one background task:
subscribe to ``crmgw:governance``, reload the hash at start, after a reconnect and every
``reload_interval`` seconds (a message missed while disconnected), reconnect with backoff.

When Redis cannot be read the last view stays in force (suspensions are never dropped for want
of a connection) and health's ``governance.problem`` says why. Before the first successful load
there is no view to keep: a replica that starts while Redis is down would let every suspended user
through, so until then every request is refused ``503 governance-unavailable`` (fail closed), and
health lists ``governance-unavailable`` in ``degraded`` (/readyz: not ready).

Without Redis the view is this process's only: with ``crmgw serve --workers N`` (N > 1) a
suspension would reach the one worker that took it. ``unshared_warning`` names that for the server
to log at start (see its comment for why this warns rather than refuses to start).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.background import cancel_and_wait, spawn
from gateway.errors import Forbidden, GatewayError, Unavailable
from gateway.governance.overlay import CHANNEL, SuspensionState, SuspensionStore

if TYPE_CHECKING:
    from gateway.model import Identity
    from gateway.redisconn import RedisClient

log = logging.getLogger("crmgw.governance")


class UserSuspended(Forbidden):
    """403 ``user-suspended``: an analyst suspended this user (gateway/governance)."""


class GovernanceUnavailable(Unavailable):
    """503 ``governance-unavailable``: the shared suspensions were never loaded (Redis down since start)."""


UNAVAILABLE = "governance-unavailable"


def unshared_warning(redis_url: str | None, workers: int) -> str | None:
    """The warning for suspensions that would reach one worker only, or None.

    Why warn and not refuse to start: without Redis nothing of the behaviour layer is shared
    between workers either (signals' memory backend, blocks, step-ups), and refusing would stop
    existing ``--workers N`` deployments that never use governance. A suspension is the one action an
    analyst expects to hold everywhere, so the gap is named loudly at start (this warning), in the
    README and in health (``governance.shared: false``).
    """
    if redis_url or workers <= 1:
        return None
    return (
        f"governance: no redis_url with {workers} workers: a suspension taken in the console reaches "
        "only the worker that served it; the others keep serving the user. Set redis_url to share "
        "suspensions (README: Governance)."
    )


class GovernanceGuard:
    def __init__(
        self,
        client: RedisClient | None,
        clock: Callable[[], datetime],
        *,
        reload_interval: float = 5.0,
        reconnect_max: float = 10.0,
    ):
        self.clock = clock
        self.state = SuspensionState()
        self.store = SuspensionStore(client, self.state)
        self.client = client
        self.reload_interval = reload_interval
        self.reconnect_max = reconnect_max
        self.last_reload = 0.0  # monotonic; 0: never
        self.problem = "" if client is None else "not loaded yet"
        # Fail closed until the shared overlay was read once (without Redis there is nothing to read).
        self.loaded = client is None
        self._task: asyncio.Task[Any] | None = None
        # redis-py may turn a cancellation into a ConnectionError: the watch stops by this flag too.
        self._stopping = False

    def now(self) -> float:
        return self.clock().timestamp()

    # --- the request path ---------------------------------------------------------------------
    def check(self, identity: Identity) -> GatewayError | None:
        if not self.loaded:
            return GovernanceUnavailable(UNAVAILABLE, detail="suspensions not loaded from Redis yet")
        s = self.state.get(identity.user.id, self.now())
        if s is None:
            return None
        return UserSuspended("user-suspended", detail=f"suspended by {s.actor}")

    def enforce(self, identity: Identity) -> None:
        """Raise ``UserSuspended`` for a suspended user, ``GovernanceUnavailable`` before the first
        load (the pipeline's one line after identity; ``Services.authenticate_admin`` for the
        console, the alerts API and the access API)."""
        refusal = self.check(identity)
        if refusal is not None:
            raise refusal

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.client is None:
            return
        await self._reload()
        self._task = spawn("governance-watch", self._watch())

    async def stop(self) -> None:
        self._stopping = True
        await cancel_and_wait(self._task, timeout=5.0)
        self._task = None

    def stopped(self) -> bool:
        """Read through a method: the flag changes while the watch awaits (no narrowing by mypy)."""
        return self._stopping

    async def _reload(self) -> bool:
        try:
            await self.store.reload(self.now())
        except Exception as exc:  # Redis down: keep the last view in force, say so in health
            self.problem = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("governance: suspensions not reloaded: %s", self.problem)
            return False
        self.problem = ""
        self.loaded = True
        self.last_reload = time.monotonic()
        return True

    async def _watch(self) -> None:
        assert self.client is not None
        delay = 0.5
        while not self._stopping:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                if await self._reload():
                    delay = 0.5
                    next_reload = time.monotonic() + self.reload_interval
                    while not self._stopping:
                        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if msg is not None and msg.get("type") == "message":
                            self.store.on_message(msg["data"])
                        if time.monotonic() >= next_reload:
                            if not await self._reload():
                                break
                            next_reload = time.monotonic() + self.reload_interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.problem = f"{type(exc).__name__}: {exc}"[:200]
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # closing a connection that already broke
                    pass
            if self.stopped():
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max)

    def health(self) -> dict[str, Any]:
        suspended = self.state.all(self.now())
        return {
            "shared": self.client is not None,
            "loaded": self.loaded,
            "suspended": len(suspended),
            "users": [s.user for s in suspended][:50],
            "problem": self.problem or None,
            "degraded": [] if self.loaded else [UNAVAILABLE],
        }
