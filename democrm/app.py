"""democrm: a small legacy-style CRM (aiohttp + SQLite) for the gateway's demo, tests and benchmarks.

Its only access control is "logged in or not", like the CRMs the gateway protects. The middlewares,
outermost first:

    record_request   every request as received -> app[REQUESTS_SEEN] (even refused ones)
    compress         gzip/deflate the body ourselves when create_app(gzip=True) and the client asks
    errors_as_json   CrmError and aiohttp's HTTP errors -> {"error": "..."} with their status
    require_login    401 {"error": "not logged in"} unless /health or /api/login

The shared ones live in ``democrm.middleware``. ``create_app(profile="realistic")`` builds the other
profile instead (``democrm.realistic``: DRF-shaped, UUID ids); the default is this classic one.
"""

from __future__ import annotations

import functools
import logging

from aiohttp import web

from democrm import handlers
from democrm.middleware import Handler, compress, record_request, require_login
from democrm.realistic.app import create_realistic_app
from democrm.seed import generate as generate_seed_data
from democrm.state import (
    CONFIG,
    REQUESTS_SEEN,
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
PROFILES = ("classic", "realistic")
MAX_BODY = 16 * 1024 * 1024  # a CSV import of tens of thousands of rows still fits


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


@functools.cache
def seeded(seed: int, customers: int, contacts: int, deals: int) -> Store:
    """The deterministic seed data in an in-memory store, generated once per process and copied into
    each new CRM (the tests start hundreds of them; generating and inserting costs ~50 ms each)."""
    store = Store(any_thread=True)
    for table, rows in generate_seed_data(seed, customers=customers, contacts=contacts, deals=deals).items():
        store.insert_many(table, rows)
    return store


def create_app(
    *,
    profile: str = "classic",
    db_path: str = ":memory:",
    gzip: bool = False,
    service_token: str = "demo-crm-service-token",
    jwt_secret: str = "democrm-dev-secret",
    seed: int = 20261124,
    customers: int = 300,
    contacts: int = 400,
    deals: int = 200,
) -> web.Application:
    """The CRM application, seeded with deterministic data unless ``db_path`` already holds some.

    ``profile="realistic"`` returns ``create_realistic_app(...)`` with the options both profiles
    share; it keeps its records in memory, so a ``db_path`` is refused rather than ignored.
    """
    if profile == "realistic":
        if db_path != ":memory:":
            raise ValueError("the realistic profile keeps its records in memory: it takes no db_path")
        return create_realistic_app(gzip=gzip, service_token=service_token, jwt_secret=jwt_secret, seed=seed)
    if profile != "classic":
        raise ValueError(f"unknown democrm profile {profile!r}; one of {', '.join(PROFILES)}")
    app = web.Application(
        middlewares=[record_request, compress, errors_as_json, require_login], client_max_size=MAX_BODY
    )
    store = Store(db_path)
    if all(store.count(table) == 0 for table in ("customers", "contacts", "deals")):
        store.copy_from(seeded(seed, customers, contacts, deals))
    app[STORE] = store
    app[CONFIG] = CrmConfig(service_token=service_token, jwt_secret=jwt_secret, gzip=gzip)
    app[REQUESTS_SEEN] = new_requests_seen()
    app[SETTINGS] = {}
    app.router.add_routes(handlers.all_routes())

    async def close_store(_app: web.Application) -> None:
        store.close()

    app.on_cleanup.append(close_store)
    return app
