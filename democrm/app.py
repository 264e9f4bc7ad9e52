"""democrm: a small legacy-style CRM (aiohttp + SQLite) for the gateway's demo, tests and benchmarks.

Its only access control is "logged in or not", like the CRMs the gateway protects. The middlewares,
outermost first:

    record_request   every request as received -> app[REQUESTS_SEEN] (even refused ones)
    compress         gzip/deflate the body ourselves when create_app(gzip=True) and the client asks
    errors_as_json   CrmError and aiohttp's HTTP errors -> {"error": "..."} with their status
    require_login    401 {"error": "not logged in"} unless /health or /api/login
"""

from __future__ import annotations

import gzip as gzip_module
import logging
import zlib
from typing import Awaitable, Callable

from aiohttp import web

from democrm import handlers
from democrm.auth import CALLER, authenticate
from democrm.seed import generate as generate_seed_data
from democrm.state import (
    CONFIG,
    REQUESTS_SEEN,
    SEEN_BODY_LIMIT,
    SETTINGS,
    STORE,
    CrmConfig,
    CrmError,
    SeenRequest,
    new_requests_seen,
)
from democrm.store import Store

__all__ = ["CONFIG", "REQUESTS_SEEN", "SETTINGS", "STORE", "SeenRequest", "create_app"]

log = logging.getLogger("democrm")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = frozenset({"/health", "/api/login"})
MAX_BODY = 16 * 1024 * 1024  # a CSV import of tens of thousands of rows still fits


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
        return handlers.json_response({"error": "request body too large"}, status=413)
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
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CrmError as error:
        return handlers.json_response({"error": error.message}, status=error.status)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        response = handlers.json_response({"error": (error.reason or "error").lower()}, status=error.status)
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except Exception:  # a bug in the demo CRM must still answer JSON, and be logged
        log.exception("democrm: unhandled error on %s %s", request.method, request.path)
        return handlers.json_response({"error": "internal error"}, status=500)


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


def create_app(
    *,
    db_path: str = ":memory:",
    gzip: bool = False,
    service_token: str = "demo-crm-service-token",
    jwt_secret: str = "democrm-dev-secret",
    seed: int = 20261124,
    customers: int = 300,
    contacts: int = 400,
    deals: int = 200,
) -> web.Application:
    """The CRM application, seeded with deterministic data unless ``db_path`` already holds some."""
    app = web.Application(
        middlewares=[record_request, compress, errors_as_json, require_login], client_max_size=MAX_BODY
    )
    store = Store(db_path)
    if all(store.count(table) == 0 for table in ("customers", "contacts", "deals")):
        data = generate_seed_data(seed, customers=customers, contacts=contacts, deals=deals)
        for table, rows in data.items():
            store.insert_many(table, rows)
    app[STORE] = store
    app[CONFIG] = CrmConfig(service_token=service_token, jwt_secret=jwt_secret, gzip=gzip)
    app[REQUESTS_SEEN] = new_requests_seen()
    app[SETTINGS] = {}
    app.router.add_routes(handlers.all_routes())

    async def close_store(_app: web.Application) -> None:
        store.close()

    app.on_cleanup.append(close_store)
    return app
