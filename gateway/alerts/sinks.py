"""Where new alerts are sent besides the store: a webhook (SOAR, chat) and, optionally, syslog.

A sink never blocks or breaks the request path: ``submit`` only puts the alert on a bounded queue
(a full queue drops the notification, counts it and logs it; the alert itself is already durable in
the store). The webhook worker POSTs each alert as JSON, retrying with exponential backoff and
jitter; a delivery that failed every attempt is kept (bounded), counted, logged, and retried later
by the same worker. Receivers can de-duplicate on the ``X-Crmgw-Alert-Id`` header.

Protocol: ``submit(event, alert_dict)``, ``async start()``, ``async close()``, ``health()``.
Events: ``alert.raised`` (a new alert), ``alert.escalated`` (a repeat or a recurrence raised its
level), ``alert.recurred`` (a later window joined the open alert: gateway/alerts/intake.py).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import socket
from collections.abc import Awaitable, Callable
from logging.handlers import SysLogHandler
from typing import Any, Protocol

import aiohttp
import orjson

from gateway.alerts.config import SyslogConfig, WebhookConfig
from gateway.background import cancel_and_wait, spawn

log = logging.getLogger("crmgw.alerts.sinks")
Delivery = tuple[str, dict[str, Any]]  # (event, alert)


class AlertSink(Protocol):
    def submit(self, event: str, alert: dict[str, Any]) -> None: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def health(self) -> dict[str, Any]: ...


class WebhookSink:
    def __init__(
        self,
        config: WebhookConfig,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ):
        self.config = config
        self.headers = {"Content-Type": "application/json", **config.resolved_headers()}
        self._sleep = sleep
        self._jitter = jitter
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=config.queue_size)
        self._failed: collections.deque[Delivery] = collections.deque(maxlen=config.queue_size)
        self._session: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None
        self.delivered = 0
        self.attempts = 0
        self.failed_deliveries = 0  # deliveries that exhausted their retries (each time)
        self.dropped = 0  # queue full, or the kept-failed list overflowed
        self.last_error: str | None = None

    def submit(self, event: str, alert: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((event, alert))
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("webhook queue full: alert %s not sent (%s)", alert.get("id"), event)

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._worker = spawn("alerts-webhook", self._run())

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (0-based): exponential, capped, jittered 50-150%."""
        base: float = min(self.config.max_backoff, self.config.backoff * (2**retry))
        return base * (0.5 + self._jitter())

    async def _run(self) -> None:
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), self.config.retry_failed_interval)
            except TimeoutError:
                await self.retry_failed()
                continue
            try:
                await self._deliver(*item)
            finally:
                self._queue.task_done()

    async def _deliver(self, event: str, alert: dict[str, Any]) -> bool:
        body = orjson.dumps(alert)
        headers = {**self.headers, "X-Crmgw-Event": event, "X-Crmgw-Alert-Id": str(alert.get("id"))}
        for attempt in range(self.config.retries + 1):
            if attempt:
                await self._sleep(self.delay(attempt - 1))
            self.attempts += 1
            try:
                async with self.session.post(self.config.url, data=body, headers=headers) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        self.delivered += 1
                        return True
                    self.last_error = f"HTTP {resp.status}"
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
        self.failed_deliveries += 1
        if len(self._failed) == self._failed.maxlen:
            self.dropped += 1
        self._failed.append((event, alert))
        log.error(
            "webhook delivery of alert %s failed after %d attempts (%s); kept for a later retry",
            alert.get("id"),
            self.config.retries + 1,
            self.last_error,
        )
        return False

    async def retry_failed(self) -> int:
        """Try the kept failed deliveries again; returns how many went through."""
        pending, self._failed = list(self._failed), collections.deque(maxlen=self._failed.maxlen)
        ok = 0
        for event, alert in pending:
            ok += await self._deliver(event, alert)
        return ok

    async def drain(self) -> None:
        """Wait until every submitted alert was delivered or given up on (tests, shutdown)."""
        await self._queue.join()

    async def close(self) -> None:
        if self._worker is not None:
            try:
                await asyncio.wait_for(self.drain(), self.config.timeout)
            except TimeoutError:
                pass
            await cancel_and_wait(self._worker)
        left = self._queue.qsize() + len(self._failed)
        if left:
            log.error("webhook: %d alert notification(s) not delivered at shutdown", left)
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the webhook sink delivers once started")
        return self._session

    def health(self) -> dict[str, Any]:
        return {
            "sink": "webhook",
            "url": self.config.url,
            "delivered": self.delivered,
            "attempts": self.attempts,
            "failed_deliveries": self.failed_deliveries,
            "pending_retry": len(self._failed),
            "queued": self._queue.qsize(),
            "dropped": self.dropped,
            "last_error": self.last_error,
        }


_SYSLOG_LEVELS = {"low": logging.INFO, "medium": logging.WARNING, "high": logging.ERROR, "critical": logging.CRITICAL}


class SyslogSink:
    """One UDP datagram (or unix-socket message) per alert: ``crmgw-alert {json}``."""

    def __init__(self, config: SyslogConfig):
        self.config = config
        self.handler = SysLogHandler(
            address=config.target(),
            facility=SysLogHandler.facility_names[config.facility],
            socktype=socket.SOCK_DGRAM,
        )
        self.sent = 0

    def submit(self, event: str, alert: dict[str, Any]) -> None:
        summary = {
            k: alert.get(k) for k in ("id", "time", "user", "type", "level", "score", "rule", "window", "summary")
        }
        message = "crmgw-alert " + orjson.dumps({"event": event, **summary}).decode()
        record = logging.LogRecord(
            "crmgw.alerts",
            _SYSLOG_LEVELS.get(str(alert.get("level")), logging.WARNING),
            __file__,
            0,
            message,
            None,
            None,
        )
        self.handler.emit(record)  # UDP send; errors go to logging's handleError, never to the caller
        self.sent += 1

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.handler.close()

    def health(self) -> dict[str, Any]:
        return {"sink": "syslog", "address": self.config.address, "sent": self.sent}
