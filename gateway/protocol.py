"""Requests that never reach the pipeline still get their one audit line.

The pipeline audits every request it handles. Two kinds of request do not get that far:

    refused here, by the first middleware (JSON 400 with a request id, connection closed)
      http-version-unsupported   anything but HTTP/1.0 and HTTP/1.1. llhttp accepts ``GET /x`` with
                                 no version (HTTP/0.9), ``HTTP/0.9`` and ``HTTP/2.0`` spelt out as
                                 text; none of them is a request the gateway can vouch for, and the
                                 CRM never speaks them
      target-asterisk-form       ``OPTIONS *``
      target-authority-form      ``CONNECT host:port``; and target-not-a-path for any other target
                                 the router cannot route (the catch-all route takes every path, so
                                 only a target that is not a path ends here; aiohttp would answer
                                 404 itself, unaudited)

    answered by aiohttp's HTTP parser before any handler or middleware runs (400, plain text)
      bad request line, method, header name or value, a line over 8190 bytes, too many headers,
      bad Content-Length / Transfer-Encoding / chunked framing, TLS on the plain port.
      aiohttp writes that answer in ``RequestHandler.handle_error`` for a placeholder request
      (``web_protocol.ERROR``) and then calls the access logger, which is the one documented hook
      that sees it: ``own_answers_logger`` is installed as the access logger (gateway.app, through
      ``handler_args``, so tests and ``crmgw serve`` get it alike). It audits exactly the requests
      that never passed ``protocol_guard``, i.e. never reached the app. The parser's exception is
      not handed to the access logger; its message is the answer's text, which gives the code
      (``PARSER_REASONS``, ``request-malformed`` when none matches). Method and path are unknown
      for these (the parser did not finish the request line), so the audit line leaves them empty.

A body whose chunked framing breaks *after* the pipeline started reading it is not one of these:
llhttp drops that body without telling the reader, which waits until ``limits.request_timeout``
(504 ``request-timeout``, audited by the pipeline).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http import HttpVersion10, HttpVersion11

from gateway.context.client_ip import ip_text
from gateway.errors import BadRequest
from gateway.model import Flow

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler, Middleware

    from gateway.services import Services
from gateway.answers import error_response, request_id_of

# Set by protocol_guard on every request the router handed over: the access logger skips those,
# the pipeline (or the gateway's own pages) answered them.
ROUTED = web.RequestKey("crmgw.routed", bool)
SUPPORTED_VERSIONS = (HttpVersion10, HttpVersion11)
OWN_ANSWERS_LOG = logging.getLogger("crmgw.protocol")

# (words in the first line of the parser's answer, lower-case; code). First match wins.
PARSER_REASONS = (
    ("invalid http version", "http-version-unsupported"),  # HTTP/1.2, HTTP/3.0 (2.0 gets through)
    ("method", "method-invalid"),  # "Invalid method encountered"
    ("status line", "request-line-invalid"),  # bad version, spaces in the target, ...
    ("url", "request-line-invalid"),  # "Invalid char in url path"
    ("https traffic", "tls-on-plain-port"),
    ("got more than", "line-too-long"),  # request line or one header over max_line/field_size
    ("too many headers", "too-many-headers"),
    ("chunk", "body-framing-invalid"),
    ("content-length", "body-framing-invalid"),
    ("transfer-encoding", "body-framing-invalid"),
    ("header", "header-invalid"),  # bad name or value character, missing Host
    ("whitespace", "header-invalid"),  # obsolete line folding
    ("expected lf", "header-invalid"),  # bare CR
)


def parser_reason(answer_text: str) -> str:
    """The code for aiohttp's 400 answer text. Only llhttp's own words are read: after them comes
    the offending line as the client sent it (``b'...'``), which must not choose the code."""
    lines = [line.strip().lower() for line in answer_text.strip().splitlines()]
    words = lines[0] if lines else ""
    if words.startswith("bad status line") and len(lines) > 1:
        words += " " + lines[1]  # "Bad status line:\n  Invalid HTTP version:": the reason is line 2
    for found, code in PARSER_REASONS:
        if found in words:
            return code
    return "request-malformed"


def refuse(
    services: Services, request: web.BaseRequest, reason: str, *, status: int = 400, method: str = "", target: str = ""
) -> Flow:
    """Audit one request the pipeline never saw, as refused with ``reason``; returns its Flow."""
    flow = Flow(request_id=request_id_of(request), method=method, raw_target=target)
    flow.received_at = services.clock().timestamp()
    client_ip, _ = services.client_ip.resolve(request.remote, request.headers)
    flow.client_ip = ip_text(client_ip) if client_ip else None
    flow.error = reason
    flow.status = status
    services.finish(flow)
    return flow


def _target_reason(request: web.Request) -> str:
    if request.raw_path == "*":
        return "target-asterisk-form"
    if request.method == "CONNECT":
        return "target-authority-form"
    return "target-not-a-path"


def protocol_guard(services: Services) -> Middleware:
    """The middleware after the request id: refuse what aiohttp lets through but the gateway must not serve."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[ROUTED] = True
        if request.version not in SUPPORTED_VERSIONS:
            reason = "http-version-unsupported"
        elif request.match_info.http_exception is not None:
            reason = _target_reason(request)
        else:
            return await handler(request)
        flow = refuse(services, request, reason, method=request.method, target=request.raw_path)
        response = error_response(flow.request_id, BadRequest(reason))
        response.force_close()
        return response

    return guard


def own_answers_logger(services: Services) -> type[AbstractAccessLogger]:
    """An access-logger class (aiohttp instantiates it) that audits aiohttp's own answers."""

    class OwnAnswers(AbstractAccessLogger):
        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            if request.get(ROUTED):
                return
            try:
                text = response.text if isinstance(response, web.Response) else ""
                refuse(services, request, parser_reason(text or ""), status=response.status)
            except Exception:  # the answer is already sent: a failure here must not reach aiohttp
                self.logger.exception("could not audit a request refused by the HTTP parser")

    return OwnAnswers
