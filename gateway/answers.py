"""The gateway's own answers: one request-id policy and one error body for every route.

Every request gets a request id from the first middleware (gateway.middleware): generated here,
never taken from the client (a client-chosen id would let a caller plant lines in the audit trail
that collide with another request's). The id is logged with every error, echoed as ``X-Request-Id``
and quoted in the body, so the pipeline's audit line, the console's and the admin API's errors, the
504 of the timeout and the log all name a request the same way.

    {"error": "<class>", "reason": "<stable code>", "request_id": "<16 hex>"[, "rule": ...]}
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from gateway.errors import GatewayError

log = logging.getLogger("crmgw.answers")

REQUEST_ID = web.RequestKey("crmgw.request_id", str)  # set by gateway.middleware.request_ids
# Set when gateway.middleware's per-request timeout fired, so the pipeline's audit line can say why.
REQUEST_TIMED_OUT = web.RequestKey("crmgw.request_timed_out", bool)
# gateway.middleware's timer for that timeout; the pipeline disarms it once its answer is decided,
# so the audit line and the client's answer cannot disagree (see gateway.pipeline.Pipeline.handle).
REQUEST_DEADLINE = web.RequestKey("crmgw.request_deadline", asyncio.TimerHandle)


class _RequestIds:
    """Request ids cut from a batch of the kernel's random bytes: the same source as
    ``secrets.token_hex(8)``, one getrandom() call per 256 ids instead of one per request (issue
    14). A forked worker drops the batch it inherited, so no two processes hand out the same ids."""

    ID_HEX = 16
    BATCH = 256

    def __init__(self) -> None:
        self.batch, self.offset = "", 0
        os.register_at_fork(after_in_child=self.drop)

    def drop(self) -> None:
        self.batch, self.offset = "", 0

    def next(self) -> str:
        offset = self.offset
        if offset >= len(self.batch):
            self.batch, offset = secrets.token_bytes(self.ID_HEX // 2 * self.BATCH).hex(), 0
        self.offset = offset + self.ID_HEX
        return self.batch[offset : offset + self.ID_HEX]


_request_ids = _RequestIds()


def new_request_id() -> str:
    """16 hex characters from the kernel's CSPRNG, never handed out twice."""
    return _request_ids.next()


def request_id_of(request: web.BaseRequest) -> str:
    """The id the first middleware gave this request (a fresh one for a request it never saw)."""
    found = request.get(REQUEST_ID)
    if found is None:
        found = new_request_id()
        if isinstance(request, web.Request):
            request[REQUEST_ID] = found
    return found


def json_answer(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json", headers=headers)


def no_store_json(data: Any, status: int = 200) -> web.Response:
    """A JSON answer of the admin APIs: never cached (it shows alerts, users, access requests)."""
    return json_answer(data, status, {"Cache-Control": "no-store"})


def error_response(
    request_id: str,
    exc: GatewayError,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The client's view of a refusal: stable codes, the deciding rule, the request id; no detail.

    ``extra`` adds named fields a client needs to act (e.g. ``approval_id``); the detail goes to the
    log only.
    """
    if exc.detail:
        log.info("request %s refused: %s (%s)", request_id, exc.reason, exc.detail)
    else:
        log.debug("request %s refused: %s", request_id, exc.reason)
    payload: dict[str, Any] = {"error": exc.error, "reason": exc.reason, "request_id": request_id}
    if exc.rule:
        payload["rule"] = exc.rule
    payload.update(exc.payload)
    payload.update(extra or {})
    out = {"X-Request-Id": request_id, "Cache-Control": "no-store"}
    if exc.status == 401:
        out["WWW-Authenticate"] = f'Bearer error="{exc.reason}"'
    out.update(headers or {})
    return json_answer(payload, exc.status, out)


def refusal(request: web.BaseRequest, status: int, error: str, reason: str) -> web.Response:
    """An error answer built from its parts, for routes that refuse without raising."""
    return error_response(request_id_of(request), GatewayError(reason, status=status, error=error))
