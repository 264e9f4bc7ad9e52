"""Which audit files exist now, opened together, and how the index recognises a file it has read.

The writer (gateway.audit.log) appends to ``audit.log`` and rotates by renaming (``audit.log`` ->
``.1`` -> ``.2`` ...; the oldest is replaced). A rename keeps the inode, so the index knows a file by
its device and inode, plus its first bytes (``head``): an inode reused by a new file after the old
one was deleted has other first bytes. A file whose size fell below what was indexed was truncated
or replaced: it is read again from the start.

:func:`open_files` opens every file and checks afterwards that each path still names the file it
opened (no lock is shared with the writer: the request path must never wait for the index). A
rotation between the two steps is seen and the snapshot taken again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

from gateway.audit.search import audit_files

HEAD_BYTES = 256
SNAPSHOT_TRIES = 20


@dataclasses.dataclass(frozen=True, slots=True)
class LiveFile:
    path: Path
    fd: int
    dev: int
    ino: int
    size: int  # when opened: lines appended later are read at the next catch-up
    head: bytes  # the first HEAD_BYTES bytes (fewer in a shorter file)

    def same_file(self, dev: int, ino: int, head: bytes, indexed: int) -> bool:
        """Is this the file the index recorded (``head`` read then, ``indexed`` bytes read)?"""
        return (self.dev, self.ino) == (dev, ino) and self.size >= indexed and self.head[: len(head)] == head

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self.fd, size, offset)


@contextlib.contextmanager
def open_files(path: Path) -> Iterator[list[LiveFile]]:
    """The audit file and its backups, oldest first, open for the ``with`` block."""
    for _ in range(SNAPSHOT_TRIES):
        files = _try_open(path)
        if files is None:
            continue
        try:
            yield files
            return
        finally:
            for f in files:
                os.close(f.fd)
    raise OSError(f"the audit files under {path} kept changing while being opened")


def _try_open(path: Path) -> list[LiveFile] | None:
    """Opened files, or None when a path changed while they were opened (try again)."""
    opened: list[LiveFile] = []
    try:
        for p in reversed(audit_files(path)):  # oldest first
            try:
                fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return None  # rotated away between the listing and the open
            st = os.fstat(fd)
            size = st.st_size  # fstat before head: head may then hold more, never less, than size
            opened.append(LiveFile(p, fd, st.st_dev, st.st_ino, size, os.pread(fd, HEAD_BYTES, 0)))
        now = [(f.path, f.dev, f.ino) for f in opened]
        again = []
        for p in reversed(audit_files(path)):
            st = os.stat(p)
            again.append((p, st.st_dev, st.st_ino))
        if now == again:
            result, opened = opened, []
            return result
        return None
    except FileNotFoundError:
        return None
    finally:
        for f in opened:
            os.close(f.fd)
