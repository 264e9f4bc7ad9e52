"""This replica's file of closed user-days' feature rows (``scoring.rows_dir``; format and reader:
detectors.liverows). Written by the replica that stored the days in the shared state, so each
user-day is written once across replicas."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from detectors.liverows import row_line

log = logging.getLogger("crmgw.scoring")
ClosedRow = tuple[str, str, float, list[float]]  # (day, role, time of its last record, row)


class RowsFile:
    def __init__(self, rows_dir: Path):
        self.path = rows_dir / f"live-rows-{socket.gethostname()}-{os.getpid()}.jsonl"
        self.written = self.failed = 0

    def write(self, user: str, closed: list[ClosedRow]) -> None:
        """Appends the rows (in a worker thread: file I/O); a failure is counted and logged."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as fh:
                fh.write(b"".join(row_line(user, role, day, t, x) for day, role, t, x in closed))
            self.written += len(closed)
        except OSError:
            self.failed += len(closed)
            log.exception("detector rows could not be written to %s", self.path)
