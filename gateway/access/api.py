"""The access requests' JSON API, for every directory user (not only admins):

    POST {prefix}/api/access-requests            {"user"?, "operations": [...], "data_scope"?, "until", "reason"}
    GET  {prefix}/api/access-requests            ?status=pending,approved,...  (what the caller may see)
    GET  {prefix}/api/access-requests/{id}
    POST {prefix}/api/access-requests/{id}/approve | /reject | /revoke     {"note"?}

The caller is identified like on every admin API (the proxy's authenticators, gateway.services'
``authenticate_admin`` without a role requirement) and is the actor: they ask for themselves or, as
``manager:``, for someone they manage; the user's manager or an approver role decides, never the
user nor the asker. A caller sees their own requests, those they asked for and those they may
decide; the console roles see all. POSTs need a JSON content type (no cross-site form can send one
without a CORS preflight, never granted). Errors answer ``{error, reason, request_id}``; each change
writes an audit line (``kind: access``, ``via: api``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from gateway.access import access_record, approver_roles
from gateway.access.model import AccessError, AccessRequest, may_decide, new_request
from gateway.access.store import AccessStore, AccessUnavailable
from gateway.answers import error_response, no_store_json, request_id_of
from gateway.errors import GatewayError
from gateway.model import Identity

if TYPE_CHECKING:
    from gateway.identity.directory import Directory
    from gateway.services import Services

log = logging.getLogger("crmservices.access.api")
MAX_BODY = 64 * 1024
VERBS = ("approve", "reject", "revoke")
Handler = Callable[[web.Request, AccessStore, Identity], Awaitable[web.Response]]


def _error(request: web.Request, status: int, error: str, reason: str, message: str = "") -> web.Response:
    exc = GatewayError(reason, status=status, error=error)
    return error_response(request_id_of(request), exc, extra={"message": message} if message else None)


def visible(req: AccessRequest, viewer: str, directory: Directory, see_all: bool) -> bool:
    return see_all or viewer in (req.user, req.requested_by) or may_decide(req, viewer, directory)


def register_access_routes(app: web.Application, services: Services, prefix: str) -> None:
    base = prefix + "/api/access-requests"
    see_all_roles = frozenset(services.settings.console.roles)

    def who(request: web.Request) -> Identity:
        _, peer_trusted = services.client_ip.resolve(request.remote, request.headers)
        identity = services.identity.identify(request.headers, peer_trusted, services.store.current.directory)
        services.governance.enforce(identity)  # a suspended user asks and decides nothing (403 user-suspended)
        return identity

    async def body_of(request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise AccessError("content-type-not-json", "send application/json", status=415)
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise AccessError("body-too-large", "body too large", status=413)
        try:
            data = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            raise AccessError("body-invalid", "the body is not JSON", status=400) from None
        if not isinstance(data, dict):
            raise AccessError("body-invalid", "the body is not a JSON object", status=400)
        return data

    def guarded(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            store = services.access
            try:
                identity = who(request)
                return await handler(request, store, identity)
            except GatewayError as exc:
                return _error(request, exc.status, exc.error, exc.reason)
            except AccessError as exc:
                return _error(request, exc.status, "refused", exc.reason, exc.message)
            except AccessUnavailable as exc:
                log.error("access requests: %s", exc)
                return _error(request, 503, "unavailable", "access-requests-unavailable")

        return wrapped

    async def create(request: web.Request, store: AccessStore, identity: Identity) -> web.Response:
        data = await body_of(request)
        unknown = set(data) - {"user", "operations", "data_scope", "until", "reason"}
        if unknown:
            raise AccessError("body-invalid", f"unknown key(s): {', '.join(sorted(unknown))}", status=400)
        ops = data.get("operations")
        if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
            raise AccessError("operations-missing", "operations: a list of operation ids", status=400)
        req = new_request(
            ruleset=services.store.current,
            user=str(data.get("user") or identity.user.id),
            requested_by=identity.user.id,
            operations=ops,
            data_scope=str(data.get("data_scope") or "own"),
            until=str(data.get("until") or ""),
            reason=str(data.get("reason") or ""),
            approver_roles=approver_roles(services.settings),
            now=services.clock(),
        )
        req = await store.request(req)
        services.audit.write(
            access_record(req, event="requested", actor=identity.user.id, via="api", now=services.clock())
        )
        return no_store_json(req.to_view(services.clock()), status=201)

    async def listing(request: web.Request, store: AccessStore, identity: Identity) -> web.Response:
        statuses = set(filter(None, request.query.get("status", "").split(","))) or None
        directory = services.store.current.directory
        see_all = bool(identity.roles & see_all_roles)
        now = services.clock()
        found = [r for r in await store.list(limit=1000) if visible(r, identity.user.id, directory, see_all)]
        views = [r.to_view(now) for r in found]
        return no_store_json([v for v in views if statuses is None or v["status"] in statuses])

    async def one(request: web.Request, store: AccessStore, identity: Identity) -> web.Response:
        req = await store.get(request.match_info["id"][:64])
        if req is None or not visible(
            req, identity.user.id, services.store.current.directory, bool(identity.roles & see_all_roles)
        ):
            raise AccessError("access-unknown", "no such access request", status=404)
        return no_store_json(req.to_view(services.clock()))

    def action(verb: str) -> Handler:
        async def act(request: web.Request, store: AccessStore, identity: Identity) -> web.Response:
            data = await body_of(request)
            note = data.get("note")
            note = str(note) if note is not None else None
            request_id = request.match_info["id"][:64]
            directory = services.store.current.directory
            actor = identity.user.id
            if verb == "revoke":
                req = await store.revoke(request_id, actor=actor, note=note, directory=directory)
            else:
                req = await store.decide(
                    request_id, approve=verb == "approve", actor=actor, note=note, directory=directory
                )
            services.audit.write(access_record(req, event=req.status, actor=actor, via="api", now=services.clock()))
            return no_store_json(req.to_view(services.clock()))

        return act

    app.router.add_post(base, guarded(create))
    app.router.add_get(base, guarded(listing))
    app.router.add_get(base + "/{id}", guarded(one))
    for verb in VERBS:
        app.router.add_post(base + "/{id}/" + verb, guarded(action(verb)))
