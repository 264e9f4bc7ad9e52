"""Searching the audit log files (the current one and its rotated backups), newest first, bounded.

The console and anything else that looks back at decisions read the same JSON lines the gateway
writes (``gateway.audit.log``): ``audit.log`` is the newest, ``audit.log.1`` the one before, and so
on. Files are read backwards in blocks, so the newest records come first and a search can stop as
soon as it has enough results or has passed the start of its time range.

Every search is bounded by ``max_bytes`` read: the audit log may hold hundreds of megabytes and a
console page must never read all of them. A search that stopped on that budget says so
(``truncated``) so the page can tell the analyst that older records were not looked at.

Cheap byte prefilters (``"user":"alice"`` must appear in the line) skip most JSON parsing; the full
match is always checked on the parsed record. A line that does not parse (a partial line being
written, a damaged file) is skipped and counted, never fatal.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from detectors.events import is_stream_start

BLOCK = 64 * 1024
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# Concurrent requests finish (and are written) out of order; a record may be this much older than
# one written before it. A time-bounded search only stops once it is this far before ``since``.
ORDER_SLACK = timedelta(minutes=5)
MAX_BACKUPS = 1000


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else None


@dataclasses.dataclass(frozen=True, slots=True)
class AuditQuery:
    """What to look for; every field is optional and they all must match.

    ``operation`` accepts a glob (``customers.*``); ``rule`` matches a deciding rule or a shadow
    rule; ``since``/``until`` are inclusive, timezone-aware.
    """

    user: str | None = None
    operation: str | None = None
    effect: str | None = None
    rule: str | None = None
    reason: str | None = None
    decision_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    shadow: bool = False  # only records with at least one shadow result

    def needles(self) -> list[bytes]:
        """Byte strings a matching line must contain (orjson writes compact, key order fixed)."""
        out = []
        for key, value in (("user", self.user), ("effect", self.effect), ("decision_id", self.decision_id)):
            if value:
                out.append(orjson.dumps({key: value})[1:-1])
        if self.rule:
            out.append(orjson.dumps(self.rule))
        if self.shadow:
            out.append(b'"would":')
        return out

    def matches(self, record: dict[str, Any]) -> bool:
        if is_stream_start(record):  # a streamed export's start line: not a decision (its last line is)
            return False
        if self.user and record.get("user") != self.user:
            return False
        if self.effect and record.get("effect") != self.effect:
            return False
        if self.decision_id and record.get("decision_id") != self.decision_id:
            return False
        if self.reason and record.get("reason") != self.reason and self.reason not in (record.get("reasons") or ()):
            return False
        if self.operation and not fnmatch.fnmatchcase(str(record.get("operation") or ""), self.operation):
            return False
        shadows = [s.get("rule") for s in record.get("shadow") or () if isinstance(s, dict)]
        if self.rule and self.rule not in (record.get("rules") or ()) and self.rule not in shadows:
            return False
        if self.shadow and not shadows:
            return False
        if self.since or self.until:
            when = parse_time(record.get("time"))
            if when is None:
                return False
            if self.since and when < self.since:
                return False
            if self.until and when > self.until:
                return False
        return True


@dataclasses.dataclass(slots=True)
class SearchResult:
    records: list[dict[str, Any]]
    files: list[str]
    scanned_bytes: int = 0
    scanned_lines: int = 0
    bad_lines: int = 0
    truncated: bool = False  # the byte budget ran out before the end of the range/the files
    # Set by the index (gateway.audit.index_search): the cursor of the next (older) page, where the
    # records came from ("index" or "scan") and how many bytes of the files the index has not read.
    next_before: int | None = None
    via: str = "scan"
    behind_bytes: int = 0


def audit_files(path: Path) -> list[Path]:
    """The audit file and its rotated backups that exist, newest first (``audit.log``, ``.1``, ...)."""
    path = Path(path)
    files = [path] if path.exists() else []
    for i in range(1, MAX_BACKUPS + 1):
        backup = path.with_name(f"{path.name}.{i}")
        if not backup.exists():
            break
        files.append(backup)
    return files


class Budget:
    """Bytes a search may still read; ``cut`` once it stopped a file before its beginning."""

    def __init__(self, max_bytes: int):
        self.max_bytes = self.left = max_bytes
        self.cut = False


def lines_backwards(path: Path, budget: Budget) -> Iterator[bytes]:
    """The lines of ``path``, last first; ``budget.left`` goes down as blocks are read."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed by the `with f` below; only the open is guarded)
    except OSError:
        return
    with f:
        pos = f.seek(0, os.SEEK_END)
        tail = b""
        while pos > 0:
            if budget.left <= 0:
                budget.cut = True
                return
            size = min(BLOCK, pos)
            pos -= size
            f.seek(pos)
            block = f.read(size)
            budget.left -= len(block)
            parts = (block + tail).split(b"\n")
            tail = parts[0]  # may continue in the previous block
            for line in reversed(parts[1:]):
                if line:
                    yield line
        if tail:
            yield tail


def search(
    path: Path,
    query: AuditQuery = AuditQuery(),
    *,
    limit: int = 100,
    max_bytes: int = DEFAULT_MAX_BYTES,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> SearchResult:
    """Matching records, newest first, at most ``limit``; reads at most ``max_bytes``.

    ``keep`` is an extra predicate for callers with needs the query cannot express.
    """
    files = audit_files(path)
    result = SearchResult(records=[], files=[str(f) for f in files])
    needles = query.needles()
    stop_before = query.since - ORDER_SLACK if query.since else None
    budget = Budget(max_bytes)
    for f in files:
        for line in lines_backwards(f, budget):
            result.scanned_lines += 1
            if stop_before is not None:
                when = _line_time(line)
                if when is not None and when < stop_before:
                    return _done(result, budget)
            if any(n not in line for n in needles):
                continue
            record = parse_line(line)
            if record is None:
                result.bad_lines += 1
                continue
            if query.matches(record) and (keep is None or keep(record)):
                result.records.append(record)
                if len(result.records) >= limit:
                    return _done(result, budget)
        if budget.cut:
            break
    return _done(result, budget)


def parse_line(line: bytes) -> dict[str, Any] | None:
    """One audit line as a dict, or None (not JSON, or not an object)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def line_match(line: bytes, query: AuditQuery) -> dict[str, Any] | None:
    """The record of ``line`` if the search above would return it, else None: the index re-checks
    every line it reads with this, so both ways of searching agree line for line."""
    if any(n not in line for n in query.needles()):
        return None
    record = parse_line(line)
    return record if record is not None and query.matches(record) else None


def _line_time(line: bytes) -> datetime | None:
    """The record's time without parsing the whole line: audit lines start with ``{"time":"...``."""
    if line.startswith(b'{"time":"'):
        end = line.find(b'"', 9)
        if end > 0:
            return parse_time(line[9:end].decode("ascii", "replace"))
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return parse_time(record.get("time")) if isinstance(record, dict) else None


def _done(result: SearchResult, budget: Budget) -> SearchResult:
    result.scanned_bytes = budget.max_bytes - max(budget.left, 0)
    result.truncated = budget.cut
    return result


def find_decision(path: Path, decision_id: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any] | None:
    """The audit record of one decision, or None (not found within the budget)."""
    found = search(path, AuditQuery(decision_id=decision_id), limit=1, max_bytes=max_bytes)
    return found.records[0] if found.records else None
