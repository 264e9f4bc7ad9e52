"""The alerts journal: an append-only JSON-lines file, the durable record of every alert change.

Why a file when Redis holds the shared state: Redis may be restarted empty, flushed, or unreachable;
the journal is what survives and what is replayed into Redis when it comes back. Every change is
appended and ``fsync``'d before it is written to Redis, so a crash loses nothing that was
acknowledged.

Lines (one ``os.write`` each on an ``O_APPEND`` descriptor, so the gateway and the ``crmgw alerts``
CLI may share one file)::

    {"op": "put",  "event": "<uuid>", "writer": "<id>", "alert": {...the whole alert...}}
    {"op": "void", "event": "<uuid>", "writer": "<id>", "id": "<alert id>"}

``void`` cancels a ``put`` whose write to Redis lost a race with another instance (the change was
recomputed on top of the winner's copy and journalled again). The newest copy of an alert is the
non-void ``put`` with the highest ``rev``. A torn last line (disk full, crash mid-write) is
terminated by a newline before the next append and skipped, counted, by the reader.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("crmgw.alerts")


class Journal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.written = 0
        self.failed = 0
        self.corrupt_lines = 0
        self.healthy = True
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._needs_newline = False
        self._read_offset = 0

    # --- writing ----------------------------------------------------------------------------
    def _open(self) -> int:
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        if created:
            _fsync_dir(self.path.parent)
        size = os.fstat(fd).st_size
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                self._needs_newline = f.read(1) != b"\n"
        return fd

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and fsync it; raises OSError (and turns unhealthy) when the disk refuses."""
        line = orjson.dumps(record) + b"\n"
        with self._lock:
            try:
                if self._fd is None:
                    self._fd = self._open()
                if self._needs_newline:
                    line = b"\n" + line
                _write_all(self._fd, line)
                os.fsync(self._fd)
                self._needs_newline = False
                self.written += 1
                self.healthy = True
            except OSError:
                self.failed += 1
                self.healthy = False
                self._needs_newline = True  # whatever part reached the disk must not swallow the next line
                self._close_fd()
                raise

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def close(self) -> None:
        with self._lock:
            self._close_fd()

    # --- reading ----------------------------------------------------------------------------
    def read_new(self) -> list[dict[str, Any]]:
        """Records appended since the last call (by any process); the first call reads everything."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._read_offset)
                data = f.read()
        except FileNotFoundError:
            return []
        except OSError as exc:  # unreadable: serve what is in memory, say so in the log
            log.error("alerts journal %s cannot be read: %s", self.path, exc)
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []  # an unfinished line: read it when it is complete
        self._read_offset += end + 1
        return list(self._parse(data[: end + 1]))

    def _parse(self, data: bytes) -> Iterator[dict[str, Any]]:
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
                if not isinstance(record, dict) or record.get("op") not in ("put", "void"):
                    raise ValueError("not a journal record")
            except ValueError:
                self.corrupt_lines += 1
                log.warning("alerts journal %s: skipped an unreadable line (%d bytes)", self.path, len(raw))
                continue
            yield record


def latest_alerts(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The newest non-void copy of every alert in ``records`` (alert dicts, by id)."""
    voided = {r.get("event") for r in records if r.get("op") == "void"}
    latest: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("op") != "put" or r.get("event") in voided:
            continue
        alert = r.get("alert")
        if not isinstance(alert, dict) or "id" not in alert:
            continue
        current = latest.get(alert["id"])
        if current is None or alert.get("rev", 0) >= current.get("rev", 0):
            latest[alert["id"]] = alert
    return latest


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
