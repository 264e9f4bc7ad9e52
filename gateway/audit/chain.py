"""The hash chain of the audit log: every line names the line physically before it.

Format (``crmgw.audit-chain/v1``): the writer (gateway.audit.log) appends one key, always last, to
every JSON line::

    {"time":"...", ..., "chain":{"seq":42,"prev":"<sha256 hex of line 41>"}}

- ``prev`` is the sha256 (hex) of the previous line's exact bytes, without its ``\\n``. The previous
  line is the one physically before it: in the same file, or for the first line of a file the last
  line of the file rotated before it (``audit.log``'s first line chains to ``audit.log.1``'s last).
  Several workers append to one file; each reads the last line and appends its own under one
  exclusive ``flock`` on ``<audit file>.lock``, so the chain is the order of the file.
- ``seq`` counts lines along the chain (1 for the first). It lets ``verify`` tell a removed line
  (a jump) from an edited one (no jump) and a reordering (a step backwards), and it is what the
  chain head carries.
- The first line of a chain has ``prev`` = ``GENESIS`` (64 zeros) and ``seq`` 1. Lines without a
  chain (written before the chain existed) are tolerated before the first chained line only.

The head (seq and sha256 of the last line) is exported as ``crmgw_audit_chain_head_info`` on
/metrics and, when ``audit.head_key_env`` names a key, signed periodically to ``audit.heads_path``
(gateway.audit.heads): removing lines from the end (which no chain can see) shows against a head
recorded elsewhere. Existing readers parse the line as JSON and ignore the extra key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

GENESIS = "0" * 64
CHAIN_KEY = b'"chain":{"seq":'
TAIL_BLOCK = 4096


def line_hash(line: bytes) -> str:
    """sha256 hex of one line's bytes (without the newline)."""
    return hashlib.sha256(line).hexdigest()


def seal(body: bytes, seq: int, prev: str) -> bytes:
    """``body`` (an orjson-dumped dict ``{...}``) with the chain key added last, plus ``\\n``."""
    link = b'"chain":{"seq":%d,"prev":"%s"}}\n' % (seq, prev.encode("ascii"))
    return body[:-1] + (b"," if len(body) > 2 else b"") + link


def seq_of(line: bytes) -> int:
    """The ``seq`` the writer put in ``line`` (0 when it has none). The chain key is the last one
    and orjson escapes quotes inside strings, so the last match is the writer's."""
    at = line.rfind(CHAIN_KEY)
    if at < 0:
        return 0
    start = at + len(CHAIN_KEY)
    end = start
    while end < len(line) and 48 <= line[end] <= 57:
        end += 1
    return int(line[start:end]) if end > start else 0


def last_line(fd: int, size: int) -> tuple[bytes | None, bool]:
    """The last line of the open file ``fd`` of ``size`` bytes: (bytes without ``\\n``, terminated).

    ``terminated`` is False when the file does not end with a newline (a torn write): the writer
    then ends that fragment before appending. (None, True) for an empty file.
    """
    if size <= 0:
        return None, True
    pos = max(0, size - TAIL_BLOCK)
    data = os.pread(fd, size - pos, pos)
    terminated = data.endswith(b"\n")
    if terminated:
        data = data[:-1]
    while True:
        nl = data.rfind(b"\n")
        if nl >= 0:
            return data[nl + 1 :], terminated
        if pos == 0:
            return data, terminated
        step = min(TAIL_BLOCK * 4, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data


def last_line_of(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        line, _ = last_line(fd, os.fstat(fd).st_size)
        return line
    finally:
        os.close(fd)


@dataclasses.dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str  # sha256 hex of the last line (GENESIS when there is none)

    @classmethod
    def of_line(cls, line: bytes | None) -> Head:
        return cls(0, GENESIS) if line is None else cls(seq_of(line), line_hash(line))


# --- verification -------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Line:
    file: str
    number: int  # 1-based within its file
    hash: str
    seq: int | None  # None: no chain key (or not JSON)
    prev: str | None
    json_ok: bool

    @property
    def where(self) -> str:
        return f"{self.file}:{self.number}"


@dataclasses.dataclass(slots=True)
class Report:
    lines: int = 0
    files: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    first_seq: int | None = None
    head: Head | None = None
    by_seq: dict[int, Line] = dataclasses.field(default_factory=dict)  # for checking signed heads

    @property
    def ok(self) -> bool:
        return not self.problems


def read_lines(files: Iterable[Path]) -> Iterator[Line]:
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        parts = data.split(b"\n")
        if parts and parts[-1] == b"":
            parts.pop()
        for number, raw in enumerate(parts, 1):
            seq = prev = None
            try:
                record = orjson.loads(raw)
                json_ok = isinstance(record, dict)
            except orjson.JSONDecodeError:
                record, json_ok = None, False
            chain = record.get("chain") if json_ok else None
            if isinstance(chain, dict) and isinstance(chain.get("seq"), int) and isinstance(chain.get("prev"), str):
                seq, prev = chain["seq"], chain["prev"]
            yield Line(str(path), number, line_hash(raw), seq, prev, json_ok)


def verify(files: list[Path]) -> Report:
    """Check the chain through ``files`` given oldest first; every problem names a file and line.

    What is wrong is told from the link that breaks: the line a ``prev`` points at is somewhere else
    (reordered), ``seq`` jumps (lines removed), or neither (the line before was edited).
    """
    report = Report(files=[str(f) for f in files])
    lines = list(read_lines(files))
    report.lines = len(lines)
    where_hash = {line.hash: line for line in lines}
    previous: Line | None = None
    started = False  # a chained line was seen: from then on every line must be chained
    for line in lines:
        if line.seq is not None:
            report.by_seq.setdefault(line.seq, line)
        if not line.json_ok:
            report.problems.append(f"{line.where}: not a JSON object (edited or torn line)")
        if line.seq is None:
            if started:
                if line.json_ok:
                    report.problems.append(f"{line.where}: no chain (the chain key was removed or the line inserted)")
            else:
                report.notes.append(f"{line.where}: written before the chain started (not protected)")
            previous = line
            continue
        if not started:
            started = True
            report.first_seq = line.seq
            if previous is None and line.seq != 1:
                report.notes.append(
                    f"{line.where}: the chain starts at seq {line.seq}; the file before it was not given, "
                    f"so its first link is not checked"
                )
            elif previous is None and line.prev != GENESIS:
                report.problems.append(f"{line.where}: seq 1 but prev is not the genesis value")
            elif previous is not None and line.prev != previous.hash:
                report.problems.append(
                    f"{line.where}: prev does not match {previous.where} (the line before the chain)"
                )
            previous = line
            continue
        assert previous is not None
        if line.prev != previous.hash:
            report.problems.append(_broken_link(previous, line, line.seq, where_hash))
        elif previous.seq is not None and line.seq != previous.seq + 1:
            report.problems.append(
                f"{line.where}: seq {line.seq} follows seq {previous.seq} although prev matches (seq edited)"
            )
        previous = line
    if lines:
        last = lines[-1]
        report.head = Head(last.seq or 0, last.hash)
    return report


def _broken_link(previous: Line, line: Line, seq: int, where_hash: dict[str, Line]) -> str:
    """Why the link from ``previous`` to ``line`` (a chained line: ``seq`` is its ``line.seq``) breaks."""
    expected = where_hash.get(line.prev or "")
    if expected is not None and expected is not previous:
        return (
            f"{line.where}: out of order: seq {line.seq} chains to {expected.where} (seq {expected.seq}), "
            f"not to the line before it, {previous.where} (seq {previous.seq}) (lines reordered)"
        )
    if previous.seq is not None and seq > previous.seq + 1:
        missing = seq - previous.seq - 1
        return (
            f"{line.where}: {missing} line(s) missing before it: seq jumps from {previous.seq} "
            f"({previous.where}) to {line.seq} (lines removed)"
        )
    if previous.seq is not None and seq <= previous.seq:
        return (
            f"{line.where}: out of order: seq {line.seq} after seq {previous.seq} ({previous.where}) "
            f"(lines reordered or duplicated)"
        )
    return (
        f"{previous.where}: edited: its sha256 does not match the prev recorded by the next line, "
        f"{line.where} (seq {line.seq})"
    )
