"""The audit log file: JSON lines, size-based rotation, and no silent loss.

Lines are written synchronously from the request task (an orjson dump and one buffered write,
a few microseconds) and flushed at once, so a crash loses nothing that was acknowledged. When the
disk refuses a write, the line goes to stderr (where the service manager keeps it), the ``dropped``
counter goes up, and ``healthy`` turns False; with ``on_failure: deny`` the pipeline then refuses
new requests (503 ``audit-unavailable``) until a write succeeds again.
"""

from __future__ import annotations

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
        self._size = 0
        self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab", buffering=0)
        self._size = self._file.tell()

    def _rotate(self) -> None:
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
                if self._size + len(line) > self.max_bytes and self._size > 0:
                    self._rotate()
                self._file.write(line)
                self._size += len(line)
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
