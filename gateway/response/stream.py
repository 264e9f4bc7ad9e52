"""Stage 5 for a CSV or NDJSON answer on a record endpoint: filtered, masked and counted as it streams.

    upstream chunk ─► StreamDecoder (gzip/deflate undone, pieces of bounded size)
                   ─► CsvStreamFilter / NdjsonStreamFilter (scope, masks, columns or fields,
                      counts, row budget) ─► client

Only HTTP/1.1 clients get a stream: its chunked body ends with a last chunk, so a cut export is told
from a complete one. An HTTP/1.0 body ends when the connection closes, complete or cut alike, so an
HTTP/1.0 request is answered buffered (gateway.response.stage: within ``max_response_body_bytes``,
refused beyond it, with a Content-Length), never streamed.

Two audit lines. Before the status line and the first row go out, ``started`` (the pipeline's
gateway.services.Services.stream_started) appends and awaits a "stream started" line: who, what,
the decision, marked so that nothing counts it as a request (gateway.audit.events). A gateway killed
mid-export (a 1 GB export takes seconds) still leaves that line; a line the disk refuses refuses the
export, nothing sent. The request's own line is written before the last chunk goes out: the stream
returns a ``StreamedAnswer`` whose rows are sent but whose end is not; the pipeline writes the audit
line, then aiohttp ends the response (``write_eof``): the last chunk for a complete export, the
connection closed without it for a cut one. So a client never holds a complete export, nor sees a
cut one end, before its line is in the audit file.

Memory is bounded by ``limits.stream_buffer_bytes`` (one decoded piece and one pending row), not by
the answer's size. Until the header row has been filtered nothing is sent, so a content type,
encoding, header or first block the filter cannot read is still the ordinary 502. After that the
status line is gone, and two things end a stream early:

    cut at a block threshold   the row budget (gateway.signals.allowance; rows reserved before they
                               go out, shared with the user's other streams: _Reserved) ran out: the rows up to
                               and including the one that crosses the threshold went out, then the
                               connection is closed without the last chunk. The client sees a 200
                               whose chunked body stops short ("transfer closed with outstanding
                               read data" in curl, ClientPayloadError in aiohttp): never a complete
                               export. The audit line keeps status 200 and the rows sent (so the
                               counters see them and the block rule fires) and says
                               ``signals.stream.cut = "row-budget"`` with the rule and the budget.
    fail closed                the answer cannot be filtered any further (malformed row, bad UTF-8,
                               truncated gzip, a row over the buffer, upstream error): the same
                               cut, ``signals.stream.cut = "unenforceable"`` and the detail. Rows
                               already sent are counted, as they were exported.
    client gone                ``signals.stream.cut = "client-disconnected"``, the rows sent counted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout
from gateway.model import Endpoint, Flow, Identity, Obligations
from gateway.response import formats
from gateway.response.stream_csv import CsvStreamFilter
from gateway.response.stream_decode import StreamDecoder
from gateway.response.stream_ndjson import NdjsonStreamFilter
from gateway.signals.reservations import CHUNK_ROWS
from gateway.upstream.headers import client_response_headers

if TYPE_CHECKING:
    from gateway.signals.allowance import RowBudget

log = logging.getLogger("crmgw.response")

READ_BYTES = 256 * 1024  # one upstream read; the decoder cuts its output to the buffer setting too
WRITE_BYTES = 256 * 1024  # filtered output held back for one write while more input is ready


# What the pipeline passes: asked once, when an answer is about to stream (None: no limit).
BudgetSource = Callable[[Flow], Awaitable["RowBudget | None"]]
# Writes the "stream started" audit line and returns once it is in the file (raises: refused).
StartLine = Callable[[Flow], Awaitable[None]]


STREAMED_FORMATS = ("csv", "ndjson")


def streams(request: web.BaseRequest, endpoint: Endpoint, status: int) -> bool:
    """The answers that stream: 2xx on a CSV or NDJSON record endpoint (a row or a line is a record),
    to an HTTP/1.1 client (chunked: a cut stream stays a cut stream)."""
    return (
        200 <= status < 300
        and endpoint.format in STREAMED_FORMATS
        and tuple(endpoint.records) == ("$",)
        and request.version >= aiohttp.HttpVersion11
    )


class StreamedAnswer(web.StreamResponse):
    """A streamed export whose end is left to aiohttp, after the pipeline wrote the audit line:
    ``write_eof`` sends the last chunk, or, for a cut stream, closes the connection without it."""

    cut: str | None = None  # why the stream stopped short (signals.stream.cut), None when complete
    client: web.BaseRequest | None = None

    async def write_eof(self, data: bytes = b"") -> None:
        if self.cut is None:
            await super().write_eof(data)
            return
        transport = self.client.transport if self.client is not None else None
        if transport is not None:
            transport.close()  # what is buffered is flushed, then the socket closes: no last chunk


async def stream_records(
    request: web.Request,
    resp: aiohttp.ClientResponse,
    flow: Flow,
    *,
    endpoint: Endpoint,
    obligations: Obligations,
    identity: Identity,
    buffer_bytes: int,
    started: StartLine,
    budget: BudgetSource | None = None,
    directory: Any = None,
) -> web.StreamResponse:
    formats.check_media_type(resp.headers.get("Content-Type"), endpoint.format)
    decoder = StreamDecoder(resp.headers.get("Content-Encoding"), buffer_bytes)
    allowance = await budget(flow) if budget is not None else None
    kind = CsvStreamFilter if endpoint.format == "csv" else NdjsonStreamFilter
    rows = kind(
        endpoint,
        obligations,
        identity,
        max_pending=buffer_bytes,
        budget=allowance.rows if allowance is not None else None,
        directory=directory,
    )
    reserved = _Reserved(allowance, rows)
    headers = client_response_headers(resp.headers, body_rewritten=True)
    headers["X-Request-Id"] = flow.request_id
    out = StreamedAnswer(status=resp.status, reason=resp.reason, headers=headers)
    out.client = request
    out.content_type = resp.headers.get("Content-Type", "text/csv").split(";")[0]
    out.charset = "utf-8"
    held: list[bytes] = []  # filtered, not sent yet: until the header row is through, a 502 is still possible
    head = request.method == "HEAD"  # fetched as GET (stage.upstream_method): the header row, no rows
    cut: str | None = None
    try:
        async for chunk, drained in _chunks(resp):
            for piece in decoder.feed(chunk):
                await reserved.cover(piece)
                held.append(rows.feed(piece))
                # Fewer, bigger writes while the CRM keeps the worker busy; all of it before waiting.
                if rows.header_done and not head and (drained or sum(map(len, held)) >= WRITE_BYTES):
                    await _send(request, out, flow, held, started)
                if rows.cut or (head and rows.header_done):
                    break
            if rows.cut or (head and rows.header_done):
                break
        if not rows.cut and not (head and rows.header_done):
            for p in decoder.finish():
                await reserved.cover(p)
                held.append(rows.feed(p))
            held.append(rows.finish())
        if not head:
            await _send(request, out, flow, held, started)
    except GatewayError as exc:
        if not out.prepared:
            raise  # nothing sent yet: the ordinary refusal (502 and the like)
        cut = "unenforceable"
        flow.signals["stream"] = {"cut": cut, "detail": exc.detail or exc.reason}
        try:  # the rows filtered before the failure are counted as sent: send them
            await _send(request, out, flow, held, started)
        except ConnectionError:
            pass
        log.warning("request %s: stream cut: %s", flow.request_id, exc.detail or exc.reason)
    except ConnectionError:  # the client hung up mid-export: nobody to answer, the rows sent counted
        cut = "client-disconnected"
        flow.signals["stream"] = {"cut": cut}
    finally:
        _record(flow, rows, head)
        await reserved.release()
    if rows.cut and allowance is not None:
        cut = "row-budget"
        flow.signals["stream"] = {"cut": cut, "rule": allowance.rule, "budget": rows.budget}
    out.cut = cut
    if not out.prepared and cut is None:
        await _start(request, out, flow, started)
    return out  # ended by aiohttp once the audit line is written (StreamedAnswer.write_eof)


class _Reserved:
    """The filter's budget grown by reservations shared with the user's other streams in flight
    (gateway.signals.reservations): before a piece is filtered, enough rows are reserved for every
    row it might complete (its line ends: a row ends with one, but for the last), ``CHUNK_ROWS`` at
    least. When fewer are granted the filter's budget stops there and the stream is cut at it."""

    def __init__(self, allowance: RowBudget | None, rows: CsvStreamFilter | NdjsonStreamFilter):
        self.reservation = allowance.reservation if allowance is not None else None
        self.rows = rows
        self.line_ends = 0
        self.exhausted = False
        if self.reservation is not None:
            rows.budget = 0  # nothing goes out unreserved

    async def cover(self, piece: bytes) -> None:
        reservation = self.reservation
        if reservation is None or self.exhausted:
            return
        self.line_ends += piece.count(b"\n")
        need = self.line_ends + 1  # no more rows than line ends so far, and the last row without one
        if need <= reservation.granted:
            return
        want = max(CHUNK_ROWS, need - reservation.granted)
        self.exhausted = await reservation.take(want) < want  # the limit is reached: no more asked
        self.rows.budget = reservation.granted

    async def release(self) -> None:
        if self.reservation is not None:
            await self.reservation.release()


async def _start(request: web.Request, out: web.StreamResponse, flow: Flow, started: StartLine) -> None:
    """The status line, once the "stream started" audit line is in the file (a refusal raises:
    nothing is sent, the ordinary 503)."""
    await started(flow)
    await out.prepare(request)


async def _send(
    request: web.Request, out: web.StreamResponse, flow: Flow, held: list[bytes], started: StartLine
) -> None:
    """Send what the filter let through; the start line, then the status line go before the first of it."""
    data = b"".join(held)
    held.clear()
    if not out.prepared:
        await _start(request, out, flow, started)
    if data:
        await out.write(data)
        flow.bytes_out += len(data)


async def _chunks(resp: aiohttp.ClientResponse) -> Any:
    """The body in pieces of up to READ_BYTES: what arrived, plus whatever is already buffered (the
    filter's cost per piece is partly fixed, so a busy worker takes bigger bites; never waits for more),
    each with whether the buffer was drained (the next read may wait: time to send what is held)."""
    content = resp.content
    try:
        async for chunk in content.iter_chunked(READ_BYTES):
            parts, size = [chunk], len(chunk)
            while size < READ_BYTES and (more := content.read_nowait(READ_BYTES - size)):
                parts.append(more)
                size += len(more)
            yield (parts[0] if len(parts) == 1 else b"".join(parts)), size < READ_BYTES
    except TimeoutError as exc:
        raise UpstreamTimeout(detail="timeout reading response body") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(detail=f"upstream failed mid-stream: {exc}") from exc


def _record(flow: Flow, rows: CsvStreamFilter | NdjsonStreamFilter, head: bool) -> None:
    flow.records_seen = rows.seen
    flow.records_returned = 0 if head else rows.returned  # a HEAD answer carries no rows
    flow.record_ids = () if head else tuple(rows.ids)
    flow.fields_masked = rows.fields_masked()
