"""The audit log file: JSON lines, size-based rotation, and no silent loss.

Lines are written synchronously from the request task (an orjson dump and one buffered write,
a few microseconds) and flushed at once, so a crash loses nothing that was acknowledged. When the
disk refuses a write, the line goes to stderr (where the service manager keeps it), the ``dropped``
counter goes up, and ``healthy`` turns False; with ``on_failure: deny`` the pipeline then refuses
new requests (503 ``audit-unavailable``) until a write succeeds again.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("crmgw.audit")


class AuditLog:
    def __init__(self, path: Path, max_bytes: int = 50 * 1024 * 1024, backups: int = 5):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.written = 0
        self.dropped = 0
        self.healthy = True
        self._lock = threading.Lock()  # rotation and writes from the CLI's threads stay ordered
        self._file = None
        self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab", buffering=0)  # O_APPEND: one write() per line, never torn

    def _rotate(self) -> None:
        """Rotate once across processes: ``crmgw serve --workers N`` has N writers on one file.

        Under an exclusive lock on ``<path>.lock``: if the path no longer names the file we hold,
        another worker rotated already and we just reopen; otherwise we shift the backups. A worker
        that has not noticed yet appends at most one more line to the renamed file (it sees the size
        on its next write), so no line is lost and no file is rotated twice.
        """
        with open(self.path.with_name(self.path.name + ".lock"), "ab") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(self._file.fileno()).st_ino:
                self._file.close()
                self._open()
                return
            self._shift_backups()

    def _shift_backups(self) -> None:
        self._file.close()
        for i in range(self.backups, 0, -1):
            src = self.path if i == 1 else self.path.with_name(f"{self.path.name}.{i - 1}")
            dst = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, dst)
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        self._open()

    def write(self, record: dict[str, Any]) -> bool:
        """Write one line; returns False (and keeps the line on stderr) when the disk refuses."""
        line = orjson.dumps(record, default=str) + b"\n"
        with self._lock:
            try:
                if self._file is None or self._file.closed:
                    self._open()
                # the file's real size (other workers append to it too), one fstat per line
                size = os.fstat(self._file.fileno()).st_size
                if size + len(line) > self.max_bytes and size > 0:
                    self._rotate()
                self._file.write(line)
                self.written += 1
                self.healthy = True
                return True
            except OSError as exc:
                self.dropped += 1
                self.healthy = False
                log.error("audit write failed (%s); line kept on stderr", exc)
                try:
                    sys.stderr.buffer.write(b"AUDIT-UNWRITTEN " + line)
                    sys.stderr.flush()
                except Exception:  # stderr gone too: the counter is all that is left
                    pass
                try:
                    if self._file is not None:
                        self._file.close()
                except OSError:
                    pass
                self._file = None
                return False

    def close(self) -> None:
        with self._lock:
            if self._file is not None and not self._file.closed:
                self._file.close()
