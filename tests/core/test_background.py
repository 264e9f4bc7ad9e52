"""gateway.background: the one way the gateway runs work in the background."""

from __future__ import annotations

import asyncio
import logging

from gateway.background import Periodic, cancel_and_wait, spawn


async def test_a_periodic_job_runs_again_after_a_failing_tick(caplog):
    ticks: list[int] = []

    def job() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 1:
            raise RuntimeError("first tick fails")

    task = Periodic("test-job", 0.01, job)
    task.start()
    while len(ticks) < 3:
        await asyncio.sleep(0.01)
    await task.stop()
    assert task.failures == 1 and not task.running
    assert any("test-job" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


async def test_an_async_job_is_awaited():
    done = asyncio.Event()

    async def job() -> None:
        done.set()

    task = Periodic("async-job", 0.01, job)
    task.start()
    await asyncio.wait_for(done.wait(), 2)
    await task.stop()


async def test_cancel_and_wait_gives_up_on_a_task_that_swallows_its_cancellation(caplog):
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                pass  # what a library turning cancellation into another error looks like to us

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    await cancel_and_wait(task, timeout=0.05)
    assert not task.done()
    assert any("stubborn" in r.getMessage() for r in caplog.records)
    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1)


async def test_a_spawned_task_that_fails_is_logged(caplog):
    async def broken() -> None:
        raise ValueError("boom")

    task = spawn("broken-task", broken())
    await asyncio.wait({task})
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    assert any("broken-task" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
