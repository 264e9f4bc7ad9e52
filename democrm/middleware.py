"""The middlewares every democrm profile shares: what reached the CRM, compression, login.

Moved out of ``democrm.app`` (unchanged) so the realistic profile (``democrm.realistic``) records
requests, compresses and authenticates exactly like the classic one; each profile keeps its own
error middleware because each answers errors in its own shape.
"""

from __future__ import annotations

import gzip as gzip_module
import zlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from democrm.auth import CALLER, authenticate
from democrm.handlers import json_response
from democrm.state import CONFIG, REQUESTS_SEEN, SEEN_BODY_LIMIT, CrmError, SeenRequest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = frozenset({"/health", "/api/login"})


def _joined_headers(request: web.Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


@web.middleware
async def record_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Keep what reached the CRM so tests can prove what the gateway let through."""
    try:
        body = await request.read()  # cached by aiohttp: the handler reads the same bytes again
        too_large = False
    except web.HTTPRequestEntityTooLarge:
        body, too_large = b"", True
    path, _, query = request.raw_path.partition("?")
    request.app[REQUESTS_SEEN].append(
        SeenRequest(
            method=request.method,
            raw_path=path,
            query_string=query,
            headers=_joined_headers(request),
            body=body[:SEEN_BODY_LIMIT],
            raw_headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers),
            body_truncated=len(body) > SEEN_BODY_LIMIT,
        )
    )
    if too_large:
        return json_response({"error": "request body too large"}, status=413)
    return await handler(request)


def _accepted_coding(accept_encoding: str) -> str | None:
    """``gzip`` or ``deflate`` if the client accepts it (q > 0), gzip preferred; else None."""
    accepted = set()
    for item in accept_encoding.lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if quality > 0:
            accepted.add({"x-gzip": "gzip", "*": "gzip"}.get(coding, coding))
    return next((coding for coding in ("gzip", "deflate") if coding in accepted), None)


@web.middleware
async def compress(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Encode bodies ourselves (not aiohttp's auto-compression) so the gateway decodes real bytes."""
    response = await handler(request)
    if not request.app[CONFIG].gzip or not isinstance(response, web.Response):
        return response
    response.headers.add("Vary", "Accept-Encoding")
    body = response.body
    coding = _accepted_coding(request.headers.get("Accept-Encoding", ""))
    if coding is None or not isinstance(body, bytes) or not body or "Content-Encoding" in response.headers:
        return response
    response.body = gzip_module.compress(body, mtime=0) if coding == "gzip" else zlib.compress(body)
    response.headers["Content-Encoding"] = coding
    return response


@web.middleware
async def require_login(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    config = request.app[CONFIG]
    caller = authenticate(
        request.headers.get("Authorization"),
        request.headers.get("X-CRM-User"),
        service_token=config.service_token,
        jwt_secret=config.jwt_secret,
    )
    if caller is None:
        raise CrmError(401, "not logged in")
    request[CALLER] = caller
    return await handler(request)
