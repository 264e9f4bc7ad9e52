"""Turn a CRM response body into plain, parsed data and back again.

The response filter must see exactly the bytes the client would see, so this module decodes the
``Content-Encoding`` (gzip, deflate) itself and refuses what it cannot decode (br, compress, stacked
encodings, unknown tokens) instead of passing it through unfiltered. Decompression is bounded by
``max_bytes``: a 10 KB zip bomb must not become 10 GB in the gateway's memory.

Content types are checked against what the catalogue says the endpoint returns (``json``, ``csv`` or
``xml``) and only UTF-8 is accepted: a body in another charset could hide a field from the masker.

Every failure raises :class:`~gateway.errors.ObligationUnenforceable`: the client gets a 502 and the
detail goes to the log. The output is always re-encoded by us (orjson / the csv module /
gateway.response.xmldoc): the client then parses exactly the document the filter looked at (duplicate
JSON keys, odd quoting, XML entities and the like cannot make the client see something other than
what was filtered).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from gateway.errors import ObligationUnenforceable
from gateway.response import xmldoc

_GZIP = 16 + zlib.MAX_WBITS  # gzip wrapper
_ZLIB = zlib.MAX_WBITS  # zlib wrapper (what RFC 9110 calls "deflate")
_RAW = -zlib.MAX_WBITS  # raw deflate (what some servers send as "deflate" anyway)
_IDENTITY = ("", "identity")
_UTF8 = ("utf-8", "utf8")


def unenforceable(detail: str) -> ObligationUnenforceable:
    return ObligationUnenforceable(detail=detail)


# --- Content-Encoding -------------------------------------------------------------------------


def decode_content(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The plain body: ``body`` with its Content-Encoding undone, never longer than ``max_bytes``."""
    if not body:  # nothing to decode, whatever the header claims (e.g. HEAD or 204 answers)
        return b""
    tokens = [t.strip().lower() for t in (content_encoding or "").split(",")]
    codings = [t for t in tokens if t not in _IDENTITY]  # "identity" is a no-op wherever it appears
    if len(codings) > 1:
        raise unenforceable(f"stacked content encodings are not supported: {content_encoding!r}")
    coding = codings[0] if codings else "identity"
    if coding == "identity":
        plain = bytes(body)
    elif coding in ("gzip", "x-gzip"):
        plain = _inflate_gzip(body, max_bytes)
    elif coding == "deflate":
        plain = _inflate_deflate(body, max_bytes)
    else:
        raise unenforceable(f"unsupported content encoding {coding!r}")
    if len(plain) > max_bytes:
        raise unenforceable(f"response body exceeds {max_bytes} bytes")
    return plain


def _inflate(data: bytes, wbits: int, limit: int) -> tuple[bytes, bytes]:
    """Inflate one stream; returns (output, bytes after the stream). Never outputs > ``limit``."""
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, limit + 1)  # one byte more than allowed tells "too big" apart
    except zlib.error as exc:
        raise unenforceable(f"corrupt compressed body: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise unenforceable(f"decompressed response body exceeds the limit ({limit} bytes left)")
    if not d.eof:
        raise unenforceable("truncated compressed body")
    return out, d.unused_data


def _inflate_gzip(body: bytes, max_bytes: int) -> bytes:
    # A gzip body may hold several members back to back (RFC 1952 §2.2); decode them all.
    parts: list[bytes] = []
    left, rest = max_bytes, body
    while True:
        out, rest = _inflate(rest, _GZIP, left)
        parts.append(out)
        left -= len(out)
        if not rest:  # anything else after a member must be another member, or inflate fails
            return b"".join(parts)


def _inflate_deflate(body: bytes, max_bytes: int) -> bytes:
    # "deflate" should be zlib-wrapped, but servers also send raw deflate; the zlib header
    # (CM=8, header checksum divisible by 31) tells them apart, as browsers and curl do.
    zlib_wrapped = len(body) >= 2 and body[0] & 0x0F == 8 and ((body[0] << 8) | body[1]) % 31 == 0
    out, rest = _inflate(body, _ZLIB if zlib_wrapped else _RAW, max_bytes)
    if rest:
        raise unenforceable("trailing garbage after deflate body")
    return out


# --- Content-Type -----------------------------------------------------------------------------


NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")


def check_media_type(content_type: str | None, expected: str) -> None:
    """Refuse a body whose Content-Type is not the endpoint's format (``json``/``csv``/``xml``/``ndjson``)
    in UTF-8."""
    if not content_type:
        raise unenforceable(f"response has no content type; expected {expected}")
    mime, _, params = content_type.partition(";")
    mime = mime.strip().lower()
    if expected == "json":
        ok = mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))
    elif expected == "csv":
        ok = mime == "text/csv"
    elif expected == "ndjson":  # one JSON value a line, under the names in use
        ok = mime in NDJSON_TYPES
    elif expected == "xml":  # application/soap+xml (SOAP 1.2) is one of the +xml types
        ok = mime in ("application/xml", "text/xml") or (mime.startswith("application/") and mime.endswith("+xml"))
    else:
        raise unenforceable(f"endpoint format {expected!r} is not supported")
    if not ok:
        raise unenforceable(f"content type {mime!r} does not match endpoint format {expected!r}")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            raise unenforceable(f"unsupported charset {value.strip()!r}; only utf-8 is filtered")


# --- JSON -------------------------------------------------------------------------------------


def load_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise unenforceable(f"response is not valid JSON: {exc}") from None


def dump_json(obj: Any) -> bytes:
    return orjson.dumps(obj)


# --- XML --------------------------------------------------------------------------------------


def load_xml(data: bytes) -> xmldoc.XmlDocument:
    """A UTF-8 XML body without DTD, entities or external references (gateway.response.xmldoc)."""
    try:
        return xmldoc.load(data)
    except xmldoc.XmlRefused as exc:
        raise unenforceable(f"response is not XML the filter reads: {exc}") from None


def dump_xml(doc: xmldoc.XmlDocument) -> bytes:
    try:
        return doc.dump()
    except xmldoc.XmlRefused as exc:
        raise unenforceable(f"filtered XML answer cannot be written: {exc}") from None


# --- CSV --------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class CsvTable:
    """A CSV body as records (column -> cell), plus what is needed to write it back the same way."""

    columns: list[str]
    rows: list[dict[str, str]]
    lineterminator: str = "\r\n"
    bom: bool = False


def load_csv(data: bytes) -> CsvTable:
    """Parse a UTF-8 CSV body with a header row; ambiguous tables are refused, not guessed."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise unenforceable(f"CSV body is not valid UTF-8: {exc}") from None
    bom = text.startswith("\ufeff")
    if bom:
        text = text[1:]
    newline = text.find("\n")  # the header line tells the line terminator the writer used
    terminator = "\r\n" if newline < 0 or text[newline - 1 : newline] == "\r" else "\n"
    try:
        lines = [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if row]
    except csv.Error as exc:
        raise unenforceable(f"response is not valid CSV: {exc}") from None
    if not lines:
        raise unenforceable("CSV body has no header row")
    columns = lines[0]
    if len(set(columns)) != len(columns):
        raise unenforceable("CSV header repeats a column name")
    width = len(columns)
    rows: list[dict[str, str]] = []
    for number, cells in enumerate(lines[1:], start=2):
        if len(cells) != width:  # extra cells would belong to no column and escape the masks
            raise unenforceable(f"CSV row {number} has {len(cells)} cells, header has {width}")
        rows.append(dict(zip(columns, cells)))
    return CsvTable(columns, rows, terminator, bom)


def dump_csv(table: CsvTable) -> bytes:
    out = io.StringIO()
    if table.bom:
        out.write("\ufeff")
    writerow = csv_row_writer(out.write, table.lineterminator)
    columns = table.columns
    writerow(columns)
    for row in table.rows:
        writerow([row[c] for c in columns])
    return out.getvalue().encode("utf-8")


class RowSink:
    """A file for csv.writer whose ``write`` is given: the writer writes a row with one call, so
    each written row goes straight where ``write`` puts it (a list's append: one string a row)."""

    __slots__ = ("write",)

    def __init__(self, write: Callable[[str], object]):
        self.write = write


def csv_row_writer(write: Callable[[str], object], terminator: str) -> Callable[[Iterable[Any]], object]:
    """csv.writer's ``writerow`` for rows ending in ``terminator``, except that a cell holding a CR
    or an LF is always quoted. csv.writer quotes only the characters of its own line terminator: with
    "\n" a bare CR went out unquoted, and a spreadsheet splits the row there (a row the filter never
    saw). So rows are written with "\r\n" (which quotes both) and each row's "\r\n" is swapped for
    ``terminator``: a row is one ``write`` call, and every other cell comes out byte-identical."""
    if terminator == "\r\n":
        return csv.writer(RowSink(write), lineterminator="\r\n").writerow
    return csv.writer(RowSink(lambda row: write(row[:-2] + terminator)), lineterminator="\r\n").writerow
