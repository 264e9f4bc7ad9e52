"""CSV text as the streamed filter reads and writes it: row ends, strict reading, quoting.

A row end is a newline after an even number of quotes (a quoted cell may hold line ends); reading
is the csv module in strict mode, as the buffered filter reads (gateway.response.formats.load_csv);
anything it refuses raises ``ObligationUnenforceable``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from gateway.response.formats import unenforceable


def last_row_end(buf: bytes) -> int:
    """The length of the longest prefix of ``buf`` made of whole rows (0: no row end yet)."""
    end = buf.rfind(b"\n")
    if end < 0:
        return 0
    quotes = buf.count(b'"', 0, end)
    while quotes % 2:  # this newline is inside a quoted field: step back to the previous one
        before = buf.rfind(b"\n", 0, end)
        if before < 0:
            return 0
        quotes -= buf.count(b'"', before, end)
        end = before
    return end + 1


def utf8(block: bytes) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise unenforceable(f"CSV body is not valid UTF-8: {exc}") from None


def header_row(text: str) -> tuple[list[str] | None, str]:
    """The first non-blank row of ``text`` (read by csv.reader) and the text after it."""
    stream = io.StringIO(text, newline="")
    reader = csv.reader(stream, strict=True)
    try:
        for row in reader:
            if row:
                return row, text[stream.tell() :]
    except csv.Error as exc:
        raise unenforceable(f"response is not valid CSV: {exc}") from None
    return None, ""


def quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


def strict_rows(text: str) -> Iterable[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        yield from reader
    except csv.Error as exc:
        raise unenforceable(f"response is not valid CSV: {exc}") from None
