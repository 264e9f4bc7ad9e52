"""The signals stage's watch over Redis (Redis backend only): one background task.

    probe       write the epoch (gateway/signals/epoch.py) and store/reload the blocks and step-ups
                (gateway/signals/enforcement.py); True when Redis took the write. Not a PING: a
                Redis at maxmemory answers PING and refuses every counter (gateway/signals/link.py).
    supervise   subscribe to the enforcement channel and apply what every instance publishes;
                probe again every ``reload_interval`` and at once while the link is not ok; on a
                failure reconnect with backoff (``reconnect_min`` doubling up to ``reconnect_max``).

A loss of counter data noticed by a probe is handed to the stage's ``report_loss`` (it alerts).
``link`` is the process's tracker for this Redis (gateway/redishealth.py), shared with the stores on
the same URL; ``owns_client`` says whether the stage closes the client (the CLIs, a stage a test
builds) or gateway.redisconn.RedisConnections does (the gateway).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gateway.clock import Clock
from gateway.redisconn import locate_channel
from gateway.redishealth import OK, STORAGE_ERRORS, UNREACHABLE, RedisHealth, classify
from gateway.signals.config import SignalsConfig
from gateway.signals.counters import marker_ttl
from gateway.signals.enforcement import CHANNEL, RedisEnforcement
from gateway.signals.epoch import EpochWatch, Loss
from gateway.signals.redis_backend import RedisCounters

if TYPE_CHECKING:
    from gateway.redisconn import RedisClient

ReportLoss = Callable[[Loss], Awaitable[None]]


class RedisWatch:
    def __init__(
        self,
        client: RedisClient,
        config: SignalsConfig,
        *,
        counters: RedisCounters,
        enforcement: RedisEnforcement,
        clock: Clock,
        link: RedisHealth | None = None,
        owns_client: bool = True,
    ):
        self.client = client
        self.owns_client = owns_client
        self.config = config
        self.counters = counters
        self.enforcement = enforcement
        self.clock = clock
        # degraded until the first write succeeds
        self.link = link if link is not None else RedisHealth(clock=clock, name="signals: Redis")
        # The signals' own writes (counting batches, this probe) succeeded last. The link is shared
        # with the alert and approval stores, whose writes also mark it ok; a fail-closed operation
        # needs *counting* to work (a cluster shard or a script error can fail only the counters),
        # so the stage asks for both (SignalsStage.counting_ok).
        self.own_state = UNREACHABLE
        self.epoch = EpochWatch(client, clock, marker_ttl(config.history_days, config.remember_days))
        # Set at shutdown: a cancellation may land inside redis-py and come out as a connection
        # error, which the loop would otherwise take for an outage and reconnect after.
        self.stopping = False

    @property
    def own_writes_ok(self) -> bool:
        return self.own_state == OK

    def own_failure(self, exc: BaseException) -> None:
        """A write of the signals' own failed: the shared tracker and the signals' own view both."""
        self.link.failed(exc)
        self.own_state = classify(exc)

    async def probe(self, report_loss: ReportLoss) -> bool:
        """One check: write the epoch, store/reload blocks and step-ups; True when Redis took the
        write."""
        try:
            if not (self.link.ok and self.own_writes_ok):
                await self.counters.prepare()  # the script cache is empty after a Redis restart
            loss = await self.epoch.check()
            await self.enforcement.reload(self.clock().timestamp())
        except STORAGE_ERRORS as exc:
            self.own_failure(exc)
            return False
        self.link.wrote()
        self.own_state = OK
        if loss is not None:
            await report_loss(loss)
        return True

    async def supervise(self, report_loss: ReportLoss) -> None:
        delay = self.config.reconnect_min
        while not self.stopping:
            pubsub = self.client.pubsub()
            try:
                await locate_channel(self.client, CHANNEL)  # a cluster after a failover: the new node
                await pubsub.subscribe(CHANNEL)
                if await self.probe(report_loss):
                    delay = self.config.reconnect_min
                    next_reload = time.monotonic() + self.config.reload_interval
                    while not self.stopping:
                        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if msg is not None and msg.get("type") == "message":
                            self.enforcement.on_message(msg["data"])
                        if not (self.link.ok and self.own_writes_ok) or time.monotonic() >= next_reload:
                            if not await self.probe(report_loss):
                                break
                            next_reload = time.monotonic() + self.config.reload_interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.own_failure(exc)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # closing a connection that already broke: nothing to keep
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max)
