"""Background work, one way: named tasks that log their failures and stop cleanly.

    task = Periodic("metrics-sync", 1.0, metrics.sync)     # every second, sync or async job
    task.start()  ...  await task.stop()                    # cancel and wait; never raises

    app.cleanup_ctx.append(periodic_ctx(Periodic(...), final=job))   # with an aiohttp app's life

A job that raises is logged (with its name) and run again at the next tick: a hiccup in one tick
must not end the loop for the life of the worker. ``stop`` cancels and waits, so nothing of the
task outlives its owner.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("crmgw.background")

Job = Callable[[], Awaitable[Any] | Any]


async def cancel_and_wait(task: asyncio.Task[Any] | None, timeout: float | None = None) -> None:
    """Cancel ``task`` and wait until it has ended (at most ``timeout`` seconds: a task that swallows
    its cancellation, as redis-py may turn one into a ConnectionError, must not hang a shutdown)."""
    if task is None or task.done():
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        log.error("background task %s did not stop within %.1f s", task.get_name(), timeout or 0)
        return
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s failed while stopping", task.get_name(), exc_info=task.exception())


async def run_job(name: str, job: Job) -> bool:
    """Run one tick of ``job``; False (and a logged traceback) when it raised."""
    try:
        result = job()
        if inspect.isawaitable(result):
            await result
        return True
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task %s failed; it runs again at its next tick", name)
        return False


class Periodic:
    """``job`` every ``interval`` seconds (the first run one interval after start)."""

    def __init__(self, name: str, interval: float, job: Job):
        self.name, self.interval, self.job = name, interval, job
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not await run_job(self.name, self.job):
                self.failures += 1


def spawn(name: str, coro: Awaitable[Any]) -> asyncio.Task[Any]:
    """A named task whose unexpected end is logged (a task nobody awaits hides its exception)."""
    task = asyncio.ensure_future(coro)
    task.set_name(name)
    task.add_done_callback(_report_end)
    return task


def _report_end(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s ended with an error", task.get_name(), exc_info=task.exception())


def periodic_ctx(periodic: Periodic, *, final: Job | None = None) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp ``cleanup_ctx`` entry running ``periodic`` for the app's life (``final`` once at stop)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        periodic.start()
        try:
            yield
        finally:
            await periodic.stop()
            if final is not None:
                await run_job(periodic.name, final)

    return ctx
