"""What the audit index stores of a line and the SQL of a query: the same fields, compared the same
way, as gateway.audit.search's scan (``AuditQuery.matches``), so the SQL selects exactly its lines.

Times are microseconds since the epoch (exact: no float); ``rules`` holds the deciding and shadow
rules, ``reasons`` the reason and the criteria's reasons, each ``\\x1f``-separated with a separator
at both ends, so ``instr`` finds one whole value; ``operation`` is the text the scan globs against.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.events import is_stream_start
from gateway.audit.search import AuditQuery, parse_line, parse_time

SHIFT = 40  # a line's position: file sequence << SHIFT | byte offset (files below 1 TiB)
SEP = "\x1f"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(when: datetime) -> int:
    """Exact microseconds since the epoch (no float rounding: the comparison must be the scan's)."""
    return (when - EPOCH) // timedelta(microseconds=1)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _joined(values: list[Any]) -> str:
    return SEP + SEP.join(v for v in values if isinstance(v, str)) + SEP


def columns(record: dict[str, Any]) -> tuple[Any, ...]:
    """(t, user, operation, effect, rules, reasons, shadow) of one record, as the scan reads them."""
    when = parse_time(record.get("time"))
    shadow = [s for s in record.get("shadow") or () if isinstance(s, dict)]
    rules = list(record.get("rules") or ()) + [s.get("rule") for s in shadow]
    reasons = [record.get("reason"), *(record.get("reasons") or ())]
    return (
        micros(when) if when is not None else None,
        _text(record.get("user")),
        str(record.get("operation") or ""),  # what the scan's glob is matched against
        _text(record.get("effect")),
        _joined(rules),
        _joined(reasons),
        1 if shadow else 0,
    )


# row_of's answer for a streamed export's start line: a line of the log, but no decision to find
# (AuditQuery.matches refuses it too), so not indexed and not counted as a bad line either
NOT_A_DECISION: tuple[Any, ...] = ()


def row_of(line: bytes) -> tuple[Any, ...] | None:
    """The index row of one line; None for a damaged line, NOT_A_DECISION for a start line."""
    record = parse_line(line)
    if record is None:
        return None
    if is_stream_start(record):
        return NOT_A_DECISION
    try:
        return columns(record)
    except (TypeError, ValueError, AttributeError):  # a JSON object the gateway never writes
        return None


def where_of(query: AuditQuery, files: Iterable[int]) -> tuple[str, list[Any], bool]:
    """SQL selecting the rows the scan's filters select, in files that still exist, and whether it
    selects exactly those (not with an operation glob using brackets: then a superset)."""
    where = [f"(id >> {SHIFT}) IN ({','.join(str(int(seq)) for seq in files)})"]
    args: list[Any] = []
    exact = True
    for column, value in (("user", query.user), ("effect", query.effect)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if query.operation:
        if "[" in query.operation:  # fnmatch's [!x] is not SQLite's [^x]: checked on the line only
            exact = False
        else:
            where.append("operation GLOB ?")  # * and ? mean what they mean to fnmatchcase
            args.append(query.operation)
    if query.rule:
        where.append("instr(rules, ?) > 0")
        args.append(SEP + query.rule + SEP)
    if query.reason:
        where.append("instr(reasons, ?) > 0")
        args.append(SEP + query.reason + SEP)
    if query.shadow:
        where.append("shadow = 1")
    if query.since:
        where.append("t >= ?")
        args.append(micros(query.since))
    if query.until:
        where.append("t <= ?")
        args.append(micros(query.until))
    if query.since or query.until:
        where.append("t IS NOT NULL")
    return " AND ".join(where), args, exact
