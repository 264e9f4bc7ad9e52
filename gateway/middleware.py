"""The one middleware stack, for tests and ``crmgw serve`` alike (gateway.app.create_app builds it):

    1 request_ids       give the request its id (gateway.answers), echo it as X-Request-Id
    2 protocol_guard    refuse what aiohttp lets through but the gateway must not serve (gateway.protocol)
    3 errors_to_json    a GatewayError raised by any route becomes the one error body; anything else
                        is logged with the request id and answered 500 internal-error
    4 request_timeout   504 request-timeout when a request takes longer than limits.request_timeout

The proxy route (gateway.pipeline) answers its own errors, because it audits them; the console, the
alerts and access APIs and the admin routes raise and let (3) answer.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.answers import REQUEST_DEADLINE, REQUEST_ID, REQUEST_TIMED_OUT, error_response, new_request_id
from gateway.errors import GatewayError

log = logging.getLogger("crmgw")


class RequestTimeout(GatewayError):
    status = 504
    error = "gateway-timeout"


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request[REQUEST_ID] = new_request_id()
    response = await handler(request)
    if not response.prepared:  # a streamed answer set its headers itself (the pipeline's do)
        response.headers.setdefault("X-Request-Id", request_id)
    return response


@web.middleware
async def errors_to_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as exc:
        return error_response(request[REQUEST_ID], exc)
    except web.HTTPException:
        raise  # aiohttp's own answers (redirects, 405 of a fixed route) are deliberate
    except Exception:
        log.exception("request %s failed", request[REQUEST_ID])
        return error_response(request[REQUEST_ID], GatewayError())


def request_timeout(seconds: float) -> Middleware:
    """End a request that takes longer than ``seconds``: 504 when nothing was sent yet, else cut.

    The pipeline's ``finally`` still writes the audit line (the handler is cancelled, not dropped);
    ``request[REQUEST_TIMED_OUT]`` tells it why, and it records 504 by the same rule as here. Once
    the pipeline has decided its answer it disarms the timer (``request[REQUEST_DEADLINE]``): a
    timeout during the wait for its audit line would send a 504 the line does not say.
    """

    @web.middleware
    async def timeout(request: web.Request, handler: Handler) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None  # a request always runs in a task
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            request[REQUEST_TIMED_OUT] = True
            task.cancel()

        timer = request[REQUEST_DEADLINE] = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            return await handler(request)
        except asyncio.CancelledError:
            if not expired or task.uncancel() > 0:
                raise  # a real cancellation (client gone, shutdown): let it through
            if getattr(request.writer, "output_size", 1):
                raise  # the response has started: the connection is cut, nothing else is possible
            return error_response(request[REQUEST_ID], RequestTimeout("request-timeout"))
        finally:
            timer.cancel()

    return timeout


def middleware_stack(guard: Middleware, timeout_seconds: float | None) -> list[Middleware]:
    """The stack in its one order; ``guard`` is gateway.protocol's, bound to the gateway's services."""
    stack: list[Middleware] = [request_ids, guard, errors_to_json]
    if timeout_seconds:
        stack.append(request_timeout(timeout_seconds))
    return stack
