"""The audit index: a SQLite file that finds audit lines by user, operation, effect, rule, reason and
time without reading the log, and is rebuilt from the log at any time (the log is the truth).

    index = AuditIndex(audit_path)            # <audit.log>.index.sqlite beside the log
    index.catch_up()                          # read what was appended (or rotated) since last time
    page = index.query(AuditQuery(user="alice", operation="customers.*"), limit=100, before=None)
    index.rebuild()                           # forget everything, read every file again

It stores no copy of a line, only where it is: each line's ``id`` is its *position*, the file's
sequence number (files in the order they were first read, oldest first) shifted left by 40 bits,
plus the byte offset in the file. Ordering by ``id`` is therefore the physical order of the log, the
order of gateway.audit.search (newest first = ``id`` descending), and a position is the cursor of
the next page. A query reads the matching lines from the files (one ``pread`` each) and checks each
with :func:`gateway.audit.search.line_match`: a line returned by the index is one the scan returns.

Catching up happens in transactions of at most ``batch`` lines; the bytes read per file are saved
in the same transaction as the rows, so a crash loses nothing: the next catch-up goes on from the
last commit. Files that disappeared (rotated out) lose their rows; a truncated or replaced file is
read again. A file older than the ones indexed (a backup restored) cannot keep the order: then the
index starts over. Columns hold the fields exactly (time in microseconds since the epoch), lists as
``\\x1f``-separated text, so the SQL filters select exactly the lines the scan's filters select.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

from gateway.audit.index_files import HEAD_BYTES, LiveFile, open_files
from gateway.audit.index_rows import NOT_A_DECISION, SHIFT, row_of, where_of
from gateway.audit.search import AuditQuery, line_match

READ_BLOCK = 4 * 1024 * 1024
SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
  seq INTEGER PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL,
  head BLOB NOT NULL, indexed INTEGER NOT NULL, lines INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lines (
  id INTEGER PRIMARY KEY, n INTEGER NOT NULL, t INTEGER, user TEXT, operation TEXT, effect TEXT,
  rules TEXT, reasons TEXT, shadow INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS lines_user ON lines(user, t);
CREATE INDEX IF NOT EXISTS lines_operation ON lines(operation, t);
CREATE INDEX IF NOT EXISTS lines_t ON lines(t);
"""


def index_path(audit_path: Path) -> Path:
    return Path(audit_path).with_name(Path(audit_path).name + ".index.sqlite")


@dataclasses.dataclass(slots=True)
class IndexPage:
    records: list[dict[str, Any]]
    positions: list[int]
    more: bool  # older matches exist: ask again with before=positions[-1]
    behind_bytes: int  # bytes of the files the index has not read yet (their lines are missing)
    stale: int = 0  # rows whose line no longer matched (a file changed under the index)


@dataclasses.dataclass(slots=True)
class CatchUp:
    lines: int = 0
    bad_lines: int = 0
    bytes: int = 0
    dropped_files: int = 0
    restarted: bool = False
    done: bool = True  # False: stopped at ``batch`` lines, call again


class AuditIndex:
    def __init__(self, audit_path: Path, db_path: Path | None = None):
        self.audit_path = Path(audit_path)
        self.db_path = Path(db_path) if db_path else index_path(self.audit_path)

    def connect(self, *, busy_ms: int = 5000) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        conn.execute("PRAGMA journal_mode=WAL")  # readers (the console) never wait for the catch-up
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        return conn

    def exists(self) -> bool:
        return self.db_path.exists()

    # --- writing --------------------------------------------------------------------------------
    def catch_up(self, *, batch: int = 50_000, conn: sqlite3.Connection | None = None) -> CatchUp:
        """Index what the files hold beyond what was read; at most ``batch`` lines in one transaction."""
        own = conn is None
        conn = conn or self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")  # one writer at a time (several workers, the CLI)
            try:
                result = self._catch_up(conn, batch)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return result
        finally:
            if own:
                conn.close()

    def catch_up_all(self, *, batch: int = 50_000) -> CatchUp:
        total = CatchUp()
        conn = self.connect()
        try:
            while True:
                step = self.catch_up(batch=batch, conn=conn)
                total.lines += step.lines
                total.bad_lines += step.bad_lines
                total.bytes += step.bytes
                total.dropped_files += step.dropped_files
                total.restarted = total.restarted or step.restarted
                if step.done:
                    conn.execute("ANALYZE")  # the planner picks the user / operation / time index by it
                    return total
        finally:
            conn.close()

    def rebuild(self, *, batch: int = 50_000) -> CatchUp:
        conn = self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM lines")
            conn.execute("DELETE FROM files")
            conn.execute("COMMIT")
        finally:
            conn.close()
        return self.catch_up_all(batch=batch)

    def _catch_up(self, conn: sqlite3.Connection, batch: int) -> CatchUp:
        result = CatchUp()
        known = conn.execute("SELECT seq, dev, ino, head, indexed FROM files ORDER BY seq").fetchall()
        with open_files(self.audit_path) as live:
            plan = _match(known, live)
            if plan is None:  # a file older than the indexed ones: the order cannot be kept
                conn.execute("DELETE FROM lines")
                conn.execute("DELETE FROM files")
                result.restarted = True
                known, plan = [], [(None, 0) for _ in live]
            kept = {seq for seq, _ in plan if seq is not None}
            for seq, *_ in known:
                if seq not in kept:
                    _drop_file(conn, seq)
                    result.dropped_files += 1
            next_seq = max((row[0] for row in known), default=0) + 1
            budget = batch
            for f, (seq, indexed) in zip(live, plan, strict=True):
                if seq is None:
                    seq, indexed = next_seq, 0
                    next_seq += 1
                    conn.execute(
                        "INSERT INTO files(seq, dev, ino, head, indexed, lines) VALUES (?, ?, ?, ?, 0, 0)",
                        (seq, f.dev, f.ino, f.head[: min(f.size, HEAD_BYTES)]),
                    )
                read = _index_file(conn, f, seq, indexed, budget, result)
                budget -= read
                if budget <= 0:
                    result.done = False
                    break
        return result

    # --- reading --------------------------------------------------------------------------------
    def query(self, query: AuditQuery, *, limit: int = 100, before: int | None = None) -> IndexPage:
        """Matching lines, newest first, strictly older than the position ``before``."""
        conn = self.connect()
        try:
            conn.execute("BEGIN")  # one snapshot of files and lines, whatever a catch-up commits meanwhile
            known = conn.execute("SELECT seq, dev, ino, head, indexed FROM files ORDER BY seq").fetchall()
            with open_files(self.audit_path) as live:
                plan = _match(known, live) or [(None, 0) for _ in live]
                files = {seq: f for f, (seq, _) in zip(live, plan, strict=True) if seq is not None}
                behind = sum(f.size - indexed for f, (_seq, indexed) in zip(live, plan, strict=True))
                page = IndexPage([], [], False, behind)
                if not files:
                    return page
                sql, args, exact = where_of(query, files)
                cursor = before
                while len(page.records) <= limit:
                    step = max(2 * limit, 64)
                    bound = "" if cursor is None else " AND id < ?"
                    rows = conn.execute(
                        f"SELECT id, n FROM lines WHERE {sql}{bound} ORDER BY id DESC LIMIT {step}",
                        [*args, *([] if cursor is None else [cursor])],
                    ).fetchall()
                    for pos, n in rows:
                        line = files[pos >> SHIFT].read(pos & ((1 << SHIFT) - 1), n)
                        record = line_match(line, query)
                        if record is None:
                            page.stale += exact  # the SQL selected exactly this line: the file changed
                            continue
                        if len(page.records) == limit:
                            page.more = True
                            return page
                        page.records.append(record)
                        page.positions.append(pos)
                    if len(rows) < step:
                        return page
                    cursor = rows[-1][0]
                return page
        finally:
            conn.close()  # ends the read transaction (nothing was written)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._db_files() if p.exists())

    def _db_files(self) -> list[Path]:
        return [self.db_path, *(self.db_path.with_name(self.db_path.name + s) for s in ("-wal", "-shm"))]


def _match(known: list[Any], live: list[LiveFile]) -> list[tuple[int | None, int]] | None:
    """For each live file (oldest first): (seq, bytes indexed) if the index knows it, else (None, 0).
    None when a file the index does not know is older than one it knows."""
    plan: list[tuple[int | None, int]] = []
    for f in live:
        found = next((row for row in known if f.same_file(row[1], row[2], row[3], row[4])), None)
        plan.append((found[0], found[4]) if found else (None, 0))
    seqs = [seq for seq, _ in plan]
    first_new = next((i for i, s in enumerate(seqs) if s is None), len(seqs))
    tail_known = [s for s in seqs[first_new:] if s is not None]
    head_known = [s for s in seqs[:first_new] if s is not None]
    if tail_known or head_known != sorted(head_known):
        return None
    return plan


def _drop_file(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute("DELETE FROM lines WHERE id >= ? AND id < ?", (seq << SHIFT, (seq + 1) << SHIFT))
    conn.execute("DELETE FROM files WHERE seq = ?", (seq,))


def _index_file(conn: sqlite3.Connection, f: LiveFile, seq: int, offset: int, budget: int, result: CatchUp) -> int:
    """Index whole lines of ``f`` from ``offset`` (a last line without its newline waits); returns
    how many lines were read (at most ``budget``) and records the new offset."""
    base = seq << SHIFT
    count = 0
    rows: list[tuple[Any, ...]] = []
    while offset < f.size and count < budget:
        block = f.read(offset, min(READ_BLOCK, f.size - offset))
        end = block.rfind(b"\n")
        if end < 0 and len(block) < READ_BLOCK:
            break  # an unfinished line: read once it has its newline
        if end < 0:  # no newline in a whole block: not a line the gateway wrote; skipped as damaged
            result.bad_lines += 1
            offset += len(block)
            result.bytes += len(block)
            continue
        start = 0
        while start <= end and count < budget:
            nl = block.index(b"\n", start)
            line = block[start:nl]
            count += 1
            if line:
                row = row_of(line)
                if row is None:
                    result.bad_lines += 1
                elif row is not NOT_A_DECISION:
                    rows.append((base + offset + start, len(line), *row))
            start = nl + 1
        offset += start
        result.bytes += start
        if len(rows) >= 10_000:
            _insert(conn, rows)
    _insert(conn, rows)
    result.lines += count
    conn.execute("UPDATE files SET indexed = ?, lines = lines + ? WHERE seq = ?", (offset, count, seq))
    return count


def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        conn.executemany(
            "INSERT INTO lines(id, n, t, user, operation, effect, rules, reasons, shadow) VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )
        rows.clear()
