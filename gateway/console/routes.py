"""The console's guard and public endpoints: :class:`Console`, CSRF, security headers, login/logout,
static files. (gateway.console.register_console adds these and the pages, which import this module.)

Every page and API handler is wrapped by :meth:`Console.page` / :meth:`Console.api`, which
authenticate first (the gateway's identity stage, the configured roles: 401/403 otherwise), then
check CSRF on POST, then call the handler with the :class:`Viewer`. Anything under
``{prefix}/console/`` that is not a route is answered by the same guard (403 before 404), so a
caller without the roles learns nothing about what exists.

Responses carry a strict Content-Security-Policy (scripts and styles only from the console's own
static files, no inline code), ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin`` and, for
pages and APIs, ``Cache-Control: no-store``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
import orjson
from aiohttp import web

from gateway.answers import refusal
from gateway.console.config import ConsoleConfig
from gateway.console.session import LOGIN_COOKIE, MAX_TOKEN, Sessions, Viewer, with_bearer
from gateway.console.templating import setup_filters
from gateway.errors import Forbidden, GatewayError, Unauthenticated

if TYPE_CHECKING:  # gateway.services -> gateway.settings -> gateway.console: annotations only
    from gateway.alerts.store import AlertStore
    from gateway.services import Services

log = logging.getLogger("crmgw.console")
HERE = Path(__file__).parent
JINJA = web.AppKey("console_jinja", jinja2.Environment)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
MAX_FORM = 64 * 1024
ROUTE_NAME = "console-login"  # ``ROUTE_NAME in app.router``: the console is registered

Handler = Callable[["Console", web.Request, Viewer], Awaitable[web.StreamResponse]]
PublicHandler = Callable[["Console", web.Request], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]
R = TypeVar("R", bound=web.StreamResponse)


class Console:
    """One registered console: its settings, sessions and templates, and the gateway's services."""

    def __init__(self, app: web.Application, services: Services, config: ConsoleConfig):
        self.services = services
        self.config = config
        self.roles = frozenset(config.roles)
        self.prefix = services.settings.admin.prefix.rstrip("/")
        self.base = self.prefix + "/console"
        self.sessions = Sessions(
            config.secret(),
            max_age=config.session_max_age,
            allowed_origins=config.allowed_origins,
            path=self.base,
            proxy_trusted=lambda peer: services.client_ip.resolve(peer, None)[1],
        )
        env = aiohttp_jinja2.setup(
            app, app_key=JINJA, autoescape=True, loader=jinja2.FileSystemLoader(str(HERE / "templates"))
        )
        setup_filters(env)
        self.static = {p.name: p.read_bytes() for p in (HERE / "static").iterdir() if p.suffix in STATIC_TYPES}
        # Pages for people without a console role (pages_approvals: approvers) add who may sign in.
        self.extra_login_roles: list[Callable[[], frozenset[str]]] = []

    @property
    def alerts(self) -> AlertStore:
        """The gateway's alert store (opened when the app starts; pages are served only after)."""
        return self.services.alerts

    @property
    def audit_path(self) -> Path:
        return Path(self.services.audit.path)

    # --- identification -------------------------------------------------------------------------
    def identify(self, request: web.Request, roles: frozenset[str] | None = None) -> Viewer:
        presented, fingerprint = self.sessions.credential(request)
        identity = self.services.authenticate_admin(presented, roles or self.roles)
        return self.sessions.viewer(identity, fingerprint)

    def login_roles(self) -> frozenset[str]:
        """Who may sign in: the console roles, plus what pages open to others add (approvers)."""
        return self.roles.union(*(extra() for extra in self.extra_login_roles))

    async def form(self, request: web.Request) -> dict[str, str]:
        """The POSTed form (bounded; aiohttp caches it, so handlers may call this again)."""
        if request.content_length is not None and request.content_length > MAX_FORM:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_FORM, actual_size=request.content_length)
        if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return {}
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def public(self, handler: PublicHandler) -> Route:
        """An endpoint anyone may reach (login, logout, static files): no guard, just this console."""

        async def wrapper(request: web.Request) -> web.StreamResponse:
            return await handler(self, request)

        return wrapper

    def page(self, handler: Handler, roles: Callable[[], frozenset[str]] | None = None) -> Route:
        """An HTML page: 401 sends a browser to the login page, 403 shows why, POST needs CSRF.
        ``roles``: who may open it, when not the console roles (evaluated per request)."""

        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                viewer = self.identify(request, roles() if roles is not None else None)
            except Unauthenticated as exc:
                if request.method == "GET":
                    target = request.path_qs if request.path.startswith(self.base + "/") else self.base + "/"
                    return secure(redirect(f"{self.base}/login?next={quote(target, safe='')}"), store=True)
                return self.error_page(request, 401, "Not signed in", exc.reason)
            except GatewayError as exc:
                log.info("console refused %s %s: %s", request.method, request.path, exc)
                return self.error_page(request, exc.status, "Access denied", exc.reason)
            if request.method == "POST":
                form = await self.form(request)
                if not self.sessions.same_origin(request) or not self.sessions.csrf_ok(viewer, form.get("csrf")):
                    log.warning("console: CSRF check failed for %s on %s", viewer.user, request.path)
                    return self.error_page(request, 403, "Request refused", "csrf-failed", viewer=viewer)
            return secure(await handler(self, request, viewer), store=True)

        return wrapper

    def api(self, handler: Handler) -> Route:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            try:
                viewer = self.identify(request)
            except GatewayError as exc:
                return self.json_error(request, exc.status, exc.error, exc.reason)
            try:
                return secure(await handler(self, request, viewer), store=True)
            except ValueError as exc:
                return self.json_error(request, 400, "bad-request", str(exc))

        return wrapper

    # --- responses ------------------------------------------------------------------------------
    def render(
        self, request: web.Request, viewer: Viewer | None, template: str, context: dict[str, Any], status: int = 200
    ) -> web.Response:
        base = {
            "viewer": viewer,
            "base": self.base,
            "prefix": self.prefix,
            "request": request,
            "nav": template.split(".")[0],
        }
        response = aiohttp_jinja2.render_template(template, request, {**base, **context}, app_key=JINJA, status=status)
        return response

    def error_page(
        self, request: web.Request, status: int, title: str, reason: str, viewer: Viewer | None = None
    ) -> web.Response:
        if request.path.startswith(self.base + "/api/"):
            return self.json_error(request, status, "forbidden" if status == 403 else "error", reason)
        response = self.render(
            request, viewer, "error.html", {"title": title, "reason": reason, "status": status}, status=status
        )
        return secure(response, store=True)

    @staticmethod
    def json(data: Any, status: int = 200) -> web.Response:
        return web.Response(body=orjson.dumps(data, default=str), status=status, content_type="application/json")

    def json_error(self, request: web.Request, status: int, error: str, reason: str) -> web.Response:
        return secure(refusal(request, status, error, reason), store=True)


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def secure(response: R, *, store: bool = False) -> R:
    response.headers.update(SECURITY_HEADERS)
    if store:
        response.headers["Cache-Control"] = "no-store"
    return response


# --- public endpoints: login, logout, static ----------------------------------------------------
async def login_form(console: Console, request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    nonce, token = console.sessions.login_nonce()
    response = console.render(
        request,
        None,
        "login.html",
        {"login_csrf": token, "error": error, "next": _safe_next(console, request.query.get("next"))},
        status=status,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path=console.base,
        httponly=True,
        samesite="Strict",
        secure=console.sessions.secure(request),
    )
    return secure(response, store=True)


def _safe_next(console: Console, target: str | None) -> str:
    """Only a path inside the console: never another site (``//evil``), never a scheme."""
    if target and target.startswith(console.base + "/") and "//" not in target and "\\" not in target:
        return target
    return console.base + "/alerts"


async def login_submit(console: Console, request: web.Request) -> web.StreamResponse:
    form = await console.form(request)
    if not console.sessions.same_origin(request) or not console.sessions.login_ok(request, form.get("csrf")):
        return await login_form(console, request, error="The login form expired; please try again.", status=403)
    token = (form.get("token") or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token or len(token) > MAX_TOKEN or any(c.isspace() for c in token):
        return await login_form(console, request, error="Paste one token.", status=400)
    try:
        identity = console.services.authenticate_admin(with_bearer(request, token), console.login_roles())
    except Unauthenticated as exc:
        return await login_form(console, request, error=f"The token was not accepted ({exc.reason}).", status=401)
    except Forbidden as exc:
        return await login_form(
            console, request, error=f"This account may not use the console ({exc.reason}).", status=403
        )
    log.info("console: %s signed in", identity.user.id)
    target = _safe_next(console, form.get("next"))
    if not identity.roles & console.roles and target == console.base + "/alerts":
        target = console.base + "/approvals"  # an approver without a console role: their one page
    response = redirect(target)
    console.sessions.set_session(response, request, token)
    response.del_cookie(LOGIN_COOKIE, path=console.base)
    return secure(response, store=True)


async def logout(console: Console, request: web.Request) -> web.StreamResponse:
    """Clears the cookie; needs this console's Origin (a cross-site page cannot log anyone out)."""
    if not console.sessions.same_origin(request):
        return console.error_page(request, 403, "Request refused", "csrf-failed")
    response = redirect(console.base + "/login")
    console.sessions.clear_session(response)
    return secure(response, store=True)


async def static(console: Console, request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = console.static.get(name)
    if body is None:
        return secure(web.Response(status=404, text="not found"))
    response = web.Response(body=body, content_type=STATIC_TYPES[Path(name).suffix])
    response.headers["Cache-Control"] = "no-cache"
    return secure(response)


async def home(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    return redirect(console.base + "/alerts")


async def not_found(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    return console.error_page(request, 404, "Not found", "page-unknown", viewer=viewer)


CONSOLE = web.AppKey("console", Console)


def register(console: Console, router: web.UrlDispatcher) -> None:
    """The public endpoints (login, logout, static files) and the home page."""
    base = console.base
    router.add_get(base + "/login", console.public(login_form), name=ROUTE_NAME)
    router.add_post(base + "/login", console.public(login_submit))
    router.add_post(base + "/logout", console.public(logout))
    router.add_get(base + "/static/{name}", console.public(static))
    router.add_get(base + "/", console.page(home))


def register_fallback(console: Console, router: web.UrlDispatcher) -> None:
    """Anything else under the console: the guard answers first (403 before 404). Added after the
    pages: among routes under one path prefix the router tries them in the order they were added."""
    router.add_route("*", console.base + "/{tail:.*}", console.page(not_found))
    router.add_route("*", console.base, console.page(not_found))
