"""Stage 5 as I/O: turn the CRM's answer into the client's, enforcing the decision's obligations.

    2xx on a CSV or NDJSON        streamed row by row (line by line): filtered, masked, counted,
      record endpoint, HTTP/1.1   cut at a block threshold (gateway.response.stream), memory
                                  bounded by ``limits.stream_buffer_bytes``, not by the answer's
                                  size; to an HTTP/1.0 client (no chunked encoding: a cut body
                                  would look complete) buffered as below, refused beyond the cap
    2xx on a record endpoint      buffered (bounded), filtered or counted, re-encoded uncompressed
    any answer to a restricted    buffered and filtered too (records, related, aggregates, metadata
      caller (scope or masks)     as declared; the rest dropped): an error answer may echo a record
                                  (a 409 with the existing record); if it cannot be filtered, its
                                  body is withheld and replaced by a JSON error with the same status.
                                  A 404 becomes the gateway's own 404, the same as for a record
                                  out of scope (gateway.pipeline), so the two cannot be told apart
    anything else                 streamed chunk by chunk, never held in memory

The pipeline sends a HEAD on a record endpoint upstream as a GET (see ``upstream_method``), so the
scope of a single record is checked the same way for both; aiohttp drops the body of a HEAD answer.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from aiohttp import web

from gateway.errors import Forbidden, ObligationUnenforceable, RecordNotFound
from gateway.model import Endpoint, Flow, Identity, Obligations
from gateway.response.filter import apply_obligations, count_records
from gateway.response.stream import BudgetSource, StartLine, stream_records, streams
from gateway.upstream.forward import read_bounded, stream_to_client
from gateway.upstream.headers import client_response_headers


def upstream_method(method: str, endpoint: Endpoint) -> str:
    """HEAD on a record endpoint is fetched as GET: the filter must see the record to decide."""
    return "GET" if method == "HEAD" and endpoint.records else method


async def respond(
    request: web.Request,
    resp: aiohttp.ClientResponse,
    flow: Flow,
    *,
    endpoint: Endpoint,
    obligations: Obligations,
    identity: Identity,
    max_bytes: int,
    directory: Any = None,
    stream_buffer_bytes: int = 1024 * 1024,
    row_budget: BudgetSource | None = None,
    stream_started: StartLine,
) -> web.StreamResponse:
    ok = 200 <= resp.status < 300
    if obligations.needs_body and resp.status == 404:
        # The CRM's own "not found" looks exactly like an out-of-scope record: no existence oracle.
        raise RecordNotFound("record-not-found", detail=f"upstream 404 on {endpoint.operation}")
    if streams(request, endpoint, resp.status):
        return await stream_records(
            request,
            resp,
            flow,
            endpoint=endpoint,
            obligations=obligations,
            identity=identity,
            buffer_bytes=stream_buffer_bytes,
            budget=row_budget,
            directory=directory,
            started=stream_started,
        )
    if obligations.needs_body or (endpoint.records and ok):
        raw = await read_bounded(resp, max_bytes)
        content_type, content_encoding = resp.headers.get("Content-Type"), resp.headers.get("Content-Encoding")
        try:
            if obligations.needs_body:
                result = apply_obligations(
                    raw,
                    content_type=content_type,
                    content_encoding=content_encoding,
                    endpoint=endpoint,
                    obligations=obligations,
                    identity=identity,
                    max_bytes=max_bytes,
                    directory=directory,
                )
            else:
                result = count_records(
                    raw,
                    content_type=content_type,
                    content_encoding=content_encoding,
                    endpoint=endpoint,
                    identity=identity,
                    max_bytes=max_bytes,
                )
        except (ObligationUnenforceable, Forbidden):
            if ok:
                raise
            return _withheld(resp.status, flow)
        if ok:
            flow.records_seen = result.records_seen
            flow.records_returned = result.records_returned
            flow.record_ids = result.record_ids
        flow.fields_masked = set(result.fields_masked)
        headers = client_response_headers(resp.headers, body_rewritten=True)
        headers["Content-Type"] = result.content_type
        headers["X-Request-Id"] = flow.request_id
        flow.bytes_out = len(result.body)
        return web.Response(status=resp.status, body=result.body, headers=headers)
    headers = client_response_headers(resp.headers, body_rewritten=False)
    headers["X-Request-Id"] = flow.request_id
    if resp.content_length is not None:
        headers["Content-Length"] = str(resp.content_length)
    out = web.StreamResponse(status=resp.status, reason=resp.reason, headers=headers)
    flow.bytes_out = await stream_to_client(request, resp, out)
    return out


def _withheld(status: int, flow: Flow) -> web.Response:
    """An error answer the filter cannot vouch for: keep its status, drop its body."""
    flow.error = flow.error or "upstream-answer-withheld"
    body = orjson.dumps(
        {
            "error": "upstream-error",
            "reason": "upstream-answer-withheld",
            "upstream_status": status,
            "request_id": flow.request_id,
        }
    )
    return web.Response(
        status=status, body=body, content_type="application/json", headers={"X-Request-Id": flow.request_id}
    )
