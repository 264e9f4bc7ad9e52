"""Stage 5 for a CSV answer on a record endpoint: filtered, masked and counted as it streams.

    upstream chunk ─► StreamDecoder (gzip/deflate undone, pieces of bounded size)
                   ─► CsvStreamFilter (scope, masks, columns, counts, row budget) ─► client

Memory is bounded by ``limits.stream_buffer_bytes`` (one decoded piece and one pending row), not by
the answer's size. Until the header row has been filtered nothing is sent, so a content type,
encoding, header or first block the filter cannot read is still the ordinary 502. After that the
status line is gone, and two things end a stream early:

    cut at a block threshold   the row budget (gateway.signals.allowance) ran out: the rows up to
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
from gateway.upstream.headers import client_response_headers

if TYPE_CHECKING:
    from gateway.signals.allowance import RowBudget

log = logging.getLogger("crmgw.response")

READ_BYTES = 256 * 1024  # one upstream read; the decoder cuts its output to the buffer setting too
WRITE_BYTES = 256 * 1024  # filtered output held back for one write while more input is ready


# What the pipeline passes: asked once, when an answer is about to stream (None: no limit).
BudgetSource = Callable[[Flow], Awaitable["RowBudget | None"]]


def streams(endpoint: Endpoint, status: int) -> bool:
    """The answers that stream: 2xx on a CSV record endpoint (its rows are its records)."""
    return 200 <= status < 300 and endpoint.format == "csv" and tuple(endpoint.records) == ("$",)


async def stream_csv(
    request: web.Request,
    resp: aiohttp.ClientResponse,
    flow: Flow,
    *,
    endpoint: Endpoint,
    obligations: Obligations,
    identity: Identity,
    buffer_bytes: int,
    budget: BudgetSource | None = None,
    directory: Any = None,
) -> web.StreamResponse:
    formats.check_media_type(resp.headers.get("Content-Type"), endpoint.format)
    decoder = StreamDecoder(resp.headers.get("Content-Encoding"), buffer_bytes)
    allowance = await budget(flow) if budget is not None else None
    rows = CsvStreamFilter(
        endpoint,
        obligations,
        identity,
        max_pending=buffer_bytes,
        budget=allowance.rows if allowance is not None else None,
        directory=directory,
    )
    headers = client_response_headers(resp.headers, body_rewritten=True)
    headers["X-Request-Id"] = flow.request_id
    out = web.StreamResponse(status=resp.status, reason=resp.reason, headers=headers)
    out.content_type = resp.headers.get("Content-Type", "text/csv").split(";")[0]
    out.charset = "utf-8"
    held: list[bytes] = []  # filtered, not sent yet: until the header row is through, a 502 is still possible
    head = request.method == "HEAD"  # fetched as GET (stage.upstream_method): the header row, no rows
    cut: str | None = None
    try:
        async for chunk, drained in _chunks(resp):
            for piece in decoder.feed(chunk):
                held.append(rows.feed(piece))
                # Fewer, bigger writes while the CRM keeps the worker busy; all of it before waiting.
                if rows.header_done and not head and (drained or sum(map(len, held)) >= WRITE_BYTES):
                    await _send(request, out, flow, held)
                if rows.cut or (head and rows.header_done):
                    break
            if rows.cut or (head and rows.header_done):
                break
        if not rows.cut and not (head and rows.header_done):
            held.extend(rows.feed(p) for p in decoder.finish())
            held.append(rows.finish())
        if not head:
            await _send(request, out, flow, held)
    except GatewayError as exc:
        if not out.prepared:
            raise  # nothing sent yet: the ordinary refusal (502 and the like)
        cut = "unenforceable"
        flow.signals["stream"] = {"cut": cut, "detail": exc.detail or exc.reason}
        try:  # the rows filtered before the failure are counted as sent: send them
            await _send(request, out, flow, held)
        except ConnectionError:
            pass
        log.warning("request %s: stream cut: %s", flow.request_id, exc.detail or exc.reason)
    except ConnectionError:  # the client hung up mid-export: nobody to answer, the rows sent counted
        cut = "client-disconnected"
        flow.signals["stream"] = {"cut": cut}
    finally:
        _record(flow, rows, head)
    if rows.cut and allowance is not None:
        cut = "row-budget"
        flow.signals["stream"] = {"cut": cut, "rule": allowance.rule, "budget": allowance.rows}
    if cut is not None:
        _cut_connection(request)
        return out
    if not out.prepared:
        await out.prepare(request)
    await out.write_eof()
    return out


async def _send(request: web.Request, out: web.StreamResponse, flow: Flow, held: list[bytes]) -> None:
    """Send what the filter let through; the status line goes with the first of it."""
    data = b"".join(held)
    held.clear()
    if not out.prepared:
        await out.prepare(request)
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


def _record(flow: Flow, rows: CsvStreamFilter, head: bool) -> None:
    flow.records_seen = rows.seen
    flow.records_returned = 0 if head else rows.returned  # a HEAD answer carries no rows
    flow.record_ids = () if head else tuple(rows.ids)
    flow.fields_masked = rows.fields_masked()


def _cut_connection(request: web.Request) -> None:
    """End the response without its last chunk: what is buffered is flushed, then the socket closes,
    so the client can tell a cut export from a complete one."""
    transport = request.transport
    if transport is not None:
        transport.close()
