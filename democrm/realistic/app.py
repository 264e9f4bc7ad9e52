"""``create_realistic_app()``: the realistic profile as an aiohttp application.

The middlewares are the classic profile's (``democrm.middleware``: the same REQUESTS_SEEN
recording, compression and login) except the error middleware, which answers the way Django REST
Framework does: ``{"detail": "..."}`` and, for a body the CRM refuses, ``{field: [messages]}``.
Outermost first:

    record_request   every request as received -> app[REQUESTS_SEEN] (even refused ones)
    compress         gzip/deflate the body ourselves when gzip=True and the client asks
    errors_as_drf    CrmError, InvalidBody and aiohttp's HTTP errors -> DRF-shaped JSON
    require_login    401 unless /health
"""

from __future__ import annotations

import logging

from aiohttp import web

from democrm.middleware import Handler, compress, record_request, require_login
from democrm.realistic import handlers
from democrm.realistic.bodies import InvalidBody
from democrm.realistic.schema import schema_routes
from democrm.realistic.seed import generate as generate_seed_data
from democrm.realistic.store import REALISTIC_STORE, RealisticStore
from democrm.state import CONFIG, REQUESTS_SEEN, CrmConfig, CrmError, new_requests_seen

log = logging.getLogger("democrm.realistic")
MAX_BODY = 16 * 1024 * 1024
# DRF's wording for the errors the shared middlewares and aiohttp's router raise.
DRF_DETAIL = {401: "Authentication credentials were not provided.", 404: "Not found."}


def _method_not_allowed(request: web.Request) -> str:
    return f'Method "{request.method}" not allowed.'


@web.middleware
async def errors_as_drf(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except InvalidBody as problem:
        return handlers.json_response(problem.errors, status=400)
    except CrmError as error:
        detail = DRF_DETAIL[401] if error.status == 401 else error.message
        return handlers.json_response({"detail": detail}, status=error.status)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        detail = _method_not_allowed(request) if error.status == 405 else DRF_DETAIL.get(error.status, error.reason)
        response = handlers.json_response({"detail": detail}, status=error.status)
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except Exception:  # a bug in the demo CRM must still answer JSON, and be logged
        log.exception("democrm realistic: unhandled error on %s %s", request.method, request.path)
        return handlers.json_response({"detail": "A server error occurred."}, status=500)


def create_realistic_app(
    *,
    gzip: bool = False,
    service_token: str = "demo-crm-service-token",
    jwt_secret: str = "democrm-dev-secret",
    seed: int = 20261124,
    leads: int = 60,
    accounts: int = 30,
) -> web.Application:
    """The realistic CRM, in memory, seeded deterministically from ``seed``.

    Its state: ``app[REALISTIC_STORE]`` (``get(resource, id)``, ``all(resource)``, ...) and, like the
    classic profile, ``app[REQUESTS_SEEN]`` and ``app[CONFIG]``.
    """
    app = web.Application(
        middlewares=[record_request, compress, errors_as_drf, require_login], client_max_size=MAX_BODY
    )
    app[REALISTIC_STORE] = RealisticStore(seed, generate_seed_data(seed, accounts=accounts, leads=leads))
    app[CONFIG] = CrmConfig(service_token=service_token, jwt_secret=jwt_secret, gzip=gzip)
    app[REQUESTS_SEEN] = new_requests_seen()
    app.router.add_routes(handlers.all_routes())
    app.router.add_routes(schema_routes())  # GET /api/v2/schema/: the OpenAPI document (openapi.yaml)
    return app
