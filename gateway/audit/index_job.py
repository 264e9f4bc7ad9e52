"""The background job that keeps the audit index up to date (``audit-index``), in its own process.

The reading and indexing run in a child process (``python -m gateway.audit.index_job AUDIT_PATH``,
started by the gateway at its first tick), never in a request and never in the gateway's
interpreter: parsing JSON holds an interpreter's lock, and in the gateway's own process a catch-up
of a large log stalled the event loop (p99 26 ms, max 115 ms while 100,000 lines were indexed from
a thread). The audit write (gateway.audit.log) does not know the index exists; the child only
reads the files. It catches up every second and exits when its parent is gone.

With ``crmgw serve --workers N`` each worker has the job, and a non-blocking ``flock`` on
``<index>.lock``, held by the worker whose child is running, lets one child index at a time (the
other workers skip their ticks); if that worker dies, another one's next tick starts a child. A
child that exits is started again at the next tick. The index saves how far it read each file in
the same transaction as the rows, so a child killed at any moment loses nothing.

The index serves the console's search, so the job runs when the console is enabled.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from aiohttp import web

from gateway.audit.index import AuditIndex
from gateway.background import Periodic, periodic_ctx

if TYPE_CHECKING:
    from gateway.services import Services

log = logging.getLogger("crmgw.audit.index")

INTERVAL = 1.0
BATCH = 5_000
TICK_LINES = 100_000  # lines between two looks at whether the parent is still there


def catch_up_some(audit_path: str, max_lines: int, stopping: threading.Event | None = None) -> int:
    """Index up to about ``max_lines`` lines (in the indexing process); returns how many."""
    index = AuditIndex(Path(audit_path))
    conn = index.connect()
    lines = 0
    try:
        while lines < max_lines and not (stopping is not None and stopping.is_set()):
            step = index.catch_up(batch=BATCH, conn=conn)
            lines += step.lines
            if step.done:
                break
    finally:
        conn.close()
    return lines


class BackgroundIndexer:
    def __init__(self, audit_path: Path):
        self.index = AuditIndex(audit_path)
        self.stopping = threading.Event()
        self.lines = 0
        self.starts = 0  # children started (one normally; more after crashes)
        self._child: asyncio.subprocess.Process | None = None
        self._lock: BinaryIO | None = None

    def try_lock(self) -> BinaryIO | None:
        """The indexing lock (closing the file releases it), or None: another process indexes."""
        if not self.index.audit_path.exists():
            return None
        lock = open(self.index.db_path.with_name(self.index.db_path.name + ".lock"), "ab")  # noqa: SIM115 (returned)
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return None
        return lock

    async def tick(self) -> None:
        """Start the indexing child unless it runs (here, or under another worker's lock)."""
        child = self._child
        if child is not None:
            if child.returncode is None:
                return
            log.warning("audit indexer exited with %s; starting it again", child.returncode)
            self._release()
        lock = self.try_lock()
        if lock is None:
            return
        self._lock = lock
        self._child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.audit.index_job",
            str(self.index.audit_path),
            stdin=asyncio.subprocess.DEVNULL,
        )
        self.starts += 1

    def run_once(self) -> int:
        """One catch-up in this process (tests); stops between batches once ``stopping`` is set."""
        lock = self.try_lock()
        if lock is None:
            return 0
        with lock:
            lines = catch_up_some(str(self.index.audit_path), 1 << 62, self.stopping)
        self.lines += lines
        return lines

    async def close(self) -> None:
        """Stop the child (a transaction it was in is rolled back: read again by the next one)."""
        self.stopping.set()
        child = self._child
        if child is not None and child.returncode is None:
            child.terminate()
            try:
                await asyncio.wait_for(child.wait(), 5)
            except TimeoutError:
                child.kill()
                await child.wait()
        self._release()

    def _release(self) -> None:
        self._child = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def follow(audit_path: str) -> None:
    """The child's loop: catch up, then every INTERVAL seconds; exits when the parent is gone."""
    parent = os.getppid()
    while os.getppid() == parent:
        try:
            lines = catch_up_some(audit_path, TICK_LINES)
        except Exception:  # a damaged index, a full disk: said, and tried again at the next tick
            log.exception("audit index catch-up failed")
            lines = 0
        if lines < TICK_LINES:
            time.sleep(INTERVAL)


def audit_indexing(services: Services) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx for create_app: the ``audit-index`` job when the console (its reader) is on."""
    if not services.settings.console.enabled:
        return _nothing
    indexer = BackgroundIndexer(Path(services.audit.path))
    return periodic_ctx(Periodic("audit-index", INTERVAL, indexer.tick), final=indexer.close)


async def _nothing(app: web.Application) -> AsyncIterator[None]:
    yield


if __name__ == "__main__":  # the child started by BackgroundIndexer.tick
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    follow(sys.argv[1])
