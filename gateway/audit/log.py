"""The audit log file: JSON lines, size-based rotation, and no silent loss.

Lines are appended with unbuffered writes under a short cross-process flock (about ten
microseconds, mostly syscalls). ``write`` appends at once; the request path uses ``write_soon``,
which queues the line and appends every line queued in the same event-loop tick together (one
flock, one ``write()``), and the request awaits that append before its answer is sent: either way
a crash loses nothing that was acknowledged. When the
disk refuses a write, the line goes to stderr (where the service manager keeps it), the ``dropped``
counter goes up, and ``healthy`` turns False; with ``on_failure: deny`` the pipeline then refuses
new requests (503 ``audit-unavailable``) until a write succeeds again.

Every line carries the hash of the line before it (gateway.audit.chain): the writer reads the last
line's hash and appends under the same flock the workers of ``crmgw serve --workers N`` use to
rotate, so the chain follows the physical order of the file, across rotations.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from gateway.audit.chain import Head, last_line, last_line_of, line_hash, seal

log = logging.getLogger("crmgw.audit")


class AuditLog:
    def __init__(self, path: Path, max_bytes: int = 50 * 1024 * 1024, backups: int = 5):
        self.path = Path(path)
        self._path_text = str(self.path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.written = 0
        self.appends = 0  # flock'ed appends: fewer than ``written`` when lines were batched (write_soon)
        self.dropped = 0
        self.healthy = True
        self._lock = threading.Lock()  # rotation and writes from the CLI's threads stay ordered
        self._file: io.FileIO | None = None
        # <path>.lock, held open: flock'ed around every append (the chain)
        self._lockfile: io.BufferedWriter | None = None
        # (inode, size, head) after our last append: while the file still ends there, the last
        # line is ours and its hash is known without reading it back
        self._mine: tuple[int, int, Head] | None = None
        # lines waiting for this loop tick's append (write_soon), with their futures
        self._queued: list[tuple[bytes, asyncio.Future[bool]]] = []
        # called after a tick's append, before the answers awaiting it are released: the gateway's
        # metrics flush their tallies there (gateway.metrics), so no answered request is uncounted
        self.before_release: Callable[[], None] | None = None
        self._open()

    def _open(self) -> io.FileIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND: one write() per line, never torn; readable too: the chain reads the last line
        self._file = f = open(self.path, "a+b", buffering=0)  # noqa: SIM115 (held open for the log's life)
        return f

    def _held(self) -> io.FileIO:
        """The open log file: ``__init__`` opens it and head()/write() reopen it before any use."""
        assert self._file is not None, "audit log used before _open()"
        return self._file

    def _flock(self) -> int:
        """Take the exclusive cross-process lock on ``<path>.lock`` (created on first use)."""
        lockfile = self._lockfile
        if lockfile is None or lockfile.closed:
            lockfile = self._lockfile = open(self.path.with_name(self.path.name + ".lock"), "ab")  # noqa: SIM115 (kept)
        fd = lockfile.fileno()
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def _follow_rotation(self) -> os.stat_result:
        """Under the flock: if the path no longer names the file we hold, another worker rotated
        it (or it was removed): reopen, so this line goes to the file the others append to.
        Returns the fstat of the file we now hold."""
        try:
            current = os.stat(self._path_text).st_ino
        except FileNotFoundError:
            current = None
        held = self._held()
        st = os.fstat(held.fileno())
        if current != st.st_ino:
            held.close()
            st = os.fstat(self._open().fileno())
        return st

    def _head_locked(self, st: os.stat_result) -> tuple[Head, bytes]:
        """Under the flock: the chain head (the file's last line) and a separator to put before our
        line (a newline after a torn, unterminated last line). ``st``: fstat of our open file."""
        size = st.st_size
        mine = self._mine
        if mine is not None and size == mine[1] and size > 0 and st.st_ino == mine[0]:
            return mine[2], b""
        if size == 0:
            # a new file: chain to the last line of the one rotated before it
            return Head.of_line(last_line_of(self.path.with_name(self.path.name + ".1"))), b""
        line, terminated = last_line(self._held().fileno(), size)
        return Head.of_line(line), b"" if terminated else b"\n"

    def _shift_backups(self) -> None:
        self._held().close()
        for i in range(self.backups, 0, -1):
            src = self.path if i == 1 else self.path.with_name(f"{self.path.name}.{i - 1}")
            dst = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, dst)
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        self._open()

    def head(self) -> Head:
        """The chain head of the file now (whichever worker wrote last): for /metrics and signing."""
        with self._lock:
            if self._file is None or self._file.closed:
                self._open()
            lockfd = self._flock()
            try:
                head, _ = self._head_locked(self._follow_rotation())
                return head
            finally:
                fcntl.flock(lockfd, fcntl.LOCK_UN)

    def write(self, record: dict[str, Any]) -> bool:
        """Write one line now; returns False (and keeps the line on stderr) when the disk refuses."""
        return self._append([orjson.dumps(record, default=str)])

    def write_soon(self, record: dict[str, Any]) -> asyncio.Future[bool] | None:
        """Queue one line for this event-loop tick's append and return a future of its outcome
        (:meth:`write`'s); None when no loop runs here (written at once, as :meth:`write`).

        Every line queued during one pass of the loop goes out in one append (one flock, one
        ``write()``), run by a callback the first line schedules: requests that finish in the same
        tick share the syscalls. The request path awaits the future before the answer is sent
        (gateway.pipeline), so "the line is in the file before the client sees the answer" holds
        as with :meth:`write`; a line is queued synchronously, so a request cancelled after
        queueing still gets its line in the next tick, and :meth:`close` writes what is left.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.write(record)
            return None
        future: asyncio.Future[bool] = loop.create_future()
        self._queued.append((orjson.dumps(record, default=str), future))
        if len(self._queued) == 1:
            loop.call_soon(self.flush_queued)
        return future

    def flush_queued(self) -> None:
        """Append every queued line (in queue order) and resolve their futures."""
        queued, self._queued = self._queued, []
        if not queued:
            return
        ok = self._append([body for body, _ in queued])
        if self.before_release is not None:
            try:
                self.before_release()
            except Exception:  # never keeps an answer from being released
                log.exception("audit: the before_release hook failed")
        for _, future in queued:
            if not future.done():
                try:
                    future.set_result(ok)
                except RuntimeError:  # its loop closed meanwhile (shutdown): the line is written
                    pass

    def _append(self, bodies: list[bytes]) -> bool:
        """Seal and append ``bodies`` in order; False (every line kept on stderr) when the disk refuses.

        Append and chain are one step across processes: under an exclusive flock on
        ``<path>.lock`` (held for a few syscalls) the writer follows a rotation done by another
        worker, reads the last line's hash (known without I/O when that line is its own), rotates
        if the next line would not fit, and appends: one ``write()`` per file for all the lines.
        See gateway.audit.chain for the format.
        """
        lines: list[bytes] = []
        with self._lock:
            try:
                if self._file is None or self._file.closed:
                    self._open()
                lockfd = self._flock()
                try:
                    st = self._follow_rotation()
                    head, sep = self._head_locked(st)
                    ino, size, seq, prev = st.st_ino, st.st_size, head.seq, head.hash
                    for body in bodies:
                        line = sep + seal(body, seq + 1, prev)
                        if size + len(line) > self.max_bytes and size > 0:
                            self._write_lines(lines)  # the lines before it go to the file they fit in
                            lines = []
                            self._shift_backups()  # once: the others follow under this same lock
                            st = os.fstat(self._held().fileno())
                            ino, size, sep = st.st_ino, st.st_size, b""
                            line = seal(body, seq + 1, prev)
                        lines.append(line)
                        seq, prev, sep = seq + 1, line_hash(line[len(sep) : -1]), b""
                        size += len(line)
                    self._write_lines(lines)
                    self._mine = (ino, size, Head(seq, prev))
                finally:
                    fcntl.flock(lockfd, fcntl.LOCK_UN)
                self.written += len(bodies)
                self.appends += 1
                self.healthy = True
                return True
            except Exception as exc:  # not only OSError: a ValueError (a file closed under us) or any
                # other failure must still end in "dropped, kept on stderr", never in queued answers
                # waiting forever on futures flush_queued would not resolve
                self.dropped += len(bodies)
                self.healthy = False
                self._mine = None
                log.error("audit write failed (%s); %d line(s) kept on stderr", exc, len(bodies))
                try:
                    for body in bodies:
                        sys.stderr.buffer.write(b"AUDIT-UNWRITTEN " + body + b"\n")
                    sys.stderr.flush()
                except Exception:  # stderr gone too: the counter is all that is left
                    pass
                for f in (self._file, self._lockfile):
                    try:
                        if f is not None:
                            f.close()
                    except OSError:
                        pass
                self._file = self._lockfile = None
                return False

    def _write_lines(self, lines: list[bytes]) -> None:
        if lines:
            self._held().write(lines[0] if len(lines) == 1 else b"".join(lines))

    def close(self) -> None:
        self.flush_queued()  # lines queued in the last tick before shutdown
        with self._lock:
            for f in (self._file, self._lockfile):
                if f is not None and not f.closed:
                    f.close()
