"""The audit log file: JSON lines, size-based rotation, and no silent loss.

Lines are written synchronously from the request task (an orjson dump and one unbuffered write
under a short cross-process flock, about ten microseconds) and flushed at once, so a crash loses nothing that was acknowledged. When the
disk refuses a write, the line goes to stderr (where the service manager keeps it), the ``dropped``
counter goes up, and ``healthy`` turns False; with ``on_failure: deny`` the pipeline then refuses
new requests (503 ``audit-unavailable``) until a write succeeds again.

Every line carries the hash of the line before it (gateway.audit.chain): the writer reads the last
line's hash and appends under the same flock the workers of ``crmgw serve --workers N`` use to
rotate, so the chain follows the physical order of the file, across rotations.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import sys
import threading
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
        self.dropped = 0
        self.healthy = True
        self._lock = threading.Lock()  # rotation and writes from the CLI's threads stay ordered
        self._file: io.FileIO | None = None
        # <path>.lock, held open: flock'ed around every append (the chain)
        self._lockfile: io.BufferedWriter | None = None
        # (inode, size, head) after our last append: while the file still ends there, the last
        # line is ours and its hash is known without reading it back
        self._mine: tuple[int, int, Head] | None = None
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
        """Write one line; returns False (and keeps the line on stderr) when the disk refuses.

        Append and chain are one step across processes: under an exclusive flock on
        ``<path>.lock`` (held for a few syscalls) the writer follows a rotation done by another
        worker, reads the last line's hash (known without I/O when that line is its own), rotates
        if the line would not fit, and appends. See gateway.audit.chain for the format.
        """
        body = orjson.dumps(record, default=str)
        line = body + b"\n"
        with self._lock:
            try:
                if self._file is None or self._file.closed:
                    self._open()
                lockfd = self._flock()
                try:
                    st = self._follow_rotation()
                    head, sep = self._head_locked(st)
                    line = sep + seal(body, head.seq + 1, head.hash)
                    if st.st_size + len(line) > self.max_bytes and st.st_size > 0:
                        self._shift_backups()  # once: the others follow under this same lock
                        st, sep = os.fstat(self._held().fileno()), b""
                        line = seal(body, head.seq + 1, head.hash)
                    self._held().write(line)
                    self._mine = (
                        st.st_ino,
                        st.st_size + len(line),
                        Head(head.seq + 1, line_hash(line[len(sep) : -1])),
                    )
                finally:
                    fcntl.flock(lockfd, fcntl.LOCK_UN)
                self.written += 1
                self.healthy = True
                return True
            except OSError as exc:
                self.dropped += 1
                self.healthy = False
                self._mine = None
                log.error("audit write failed (%s); line kept on stderr", exc)
                try:
                    sys.stderr.buffer.write(b"AUDIT-UNWRITTEN " + line)
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

    def close(self) -> None:
        with self._lock:
            for f in (self._file, self._lockfile):
                if f is not None and not f.closed:
                    f.close()
