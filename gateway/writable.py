"""Can the gateway still write where it must? The readiness probe of the audit log and alerts journal.

A flag set by the last failed write is not enough: an alert is rare, so a journal whose folder is gone
(a volume not mounted, a read-only file system, a path under a regular file) would look healthy until
the first alert could not be journalled. ``cannot_append(path)`` does what the writers do when they
(re)open their file -- create the folder, open for appending with ``O_CREAT`` -- and closes at once,
writing nothing. It is a real ``open``, not ``os.access``: it sees a read-only mount, a missing or
replaced folder and a full inode table the same way the writer will, whoever the process runs as.
"""

from __future__ import annotations

import os
from pathlib import Path


def cannot_append(path: Path) -> str | None:
    """Why ``path`` cannot be opened for appending (its folder created if missing), or None."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    return None
