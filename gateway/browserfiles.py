"""``/favicon.ico`` and ``/robots.txt``: answered by the gateway itself, not audited, never forwarded.

Every browser page load asks for ``/favicon.ico``; crawlers ask for ``/robots.txt``. Through the
pipeline both were unauthenticated requests for no catalogued operation: a 401 deny in the audit
log each time (issue 11: 34 of 45 denies in a demo session), noise that hides the denies that
matter. The gateway answers them itself, like ``/healthz``:

    GET/HEAD /favicon.ico   204 No Content, cacheable for a day (the browser stops asking)
    GET/HEAD /robots.txt    200 ``User-agent: *`` / ``Disallow: /``: nothing behind the gateway
                            is for crawlers

No audit line (the answer reveals nothing and reaches nothing), no call to the CRM. Other methods
on these paths are not answered here: they go to the pipeline like any request (and are audited).

A CRM with real routes at these paths: the catalogue decides. When ``rules/operations.yaml``
declares an operation for ``GET /favicon.ico`` or ``GET /robots.txt``, the request goes through the
pipeline like any other operation (identity, rules, audit, forwarded to the CRM); otherwise the
gateway's answer stands in for the CRM's. The CRM's favicon or robots file is not an operation
anyone needs to reach *through an access gateway* unless an admin says so, and an uncatalogued path
is never forwarded anyway (default deny), so the gateway's answer hides nothing that would have
been served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.ruleset import RuleSet

ROBOTS_TXT = "User-agent: *\nDisallow: /\n"
PATHS = ("/favicon.ico", "/robots.txt")


def register_browser_files(
    app: web.Application,
    rules: Callable[[], RuleSet],
    proxy: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> None:
    """Add the two routes; call before the catch-all ``proxy`` route (the pipeline's handler)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        if rules().catalogue.match("GET", request.path) is not None:
            return await proxy(request)  # the admins catalogued the CRM's own file
        if request.path == "/robots.txt":
            return web.Response(text=ROBOTS_TXT, headers={"Cache-Control": "public, max-age=86400"})
        return web.Response(status=204, headers={"Cache-Control": "public, max-age=86400"})

    for path in PATHS:
        app.router.add_get(path, answer)  # HEAD too (aiohttp's allow_head)
