"""Access requests in the console (gateway.access): ask for a time-boxed grant, decide, revoke.

Open to the people who may sign in to the console's approvals page (console roles, managers,
approvers: they ask for themselves or for the people they manage, and decide); a sales rep asks with
the API or ``crmgw access``. The other console pages still need a console role. The page shows

* a form to ask (user, operations, data scope, until, reason);
* the pending requests the viewer may decide (the user's manager or an approver role; never the
  user nor the asker), each with approve and reject forms (CSRF token + Origin check, a note);
* the requests the viewer may see (their own, those they asked for or may decide; console roles:
  all), with the active grants first and a revoke form where the viewer may revoke.

Every change goes through AccessStore (permissions checked again there) and writes one audit line
(``kind: access``, ``via: console``).

    GET  {base}/access
    POST {base}/access                                   csrf, user, operations, data_scope, until, reason
    POST {base}/access/{id}/approve | /reject | /revoke  csrf, note
"""

from __future__ import annotations

import logging
from functools import partial
from urllib.parse import quote

from aiohttp import web

from gateway.access import access_record, approver_roles
from gateway.access.api import visible
from gateway.access.model import AccessError, may_decide, may_revoke, new_request
from gateway.access.store import AccessUnavailable
from gateway.console import pages_approvals
from gateway.console.routes import Console, redirect
from gateway.console.session import Viewer

log = logging.getLogger("crmgw.console")


def page_roles(console: Console) -> frozenset[str]:
    """Who may open the page: those of the approvals page (console roles, managers' roles, approver
    roles) and the access requests' approver roles. Others (a sales rep) ask with the API or the CLI:
    the console stays closed to them."""
    return pages_approvals.approver_roles(console) | frozenset(approver_roles(console.services.settings))


async def listing(
    console: Console, request: web.Request, viewer: Viewer, *, error: str = "", status: int = 200
) -> web.Response:
    services = console.services
    ruleset = services.store.current
    directory = ruleset.directory
    now = services.clock()
    see_all = bool(viewer.identity.roles & frozenset(console.roles))
    found = [r for r in await services.access.list(limit=500) if visible(r, viewer.user, directory, see_all)]
    to_decide = [r for r in found if r.shown_status(now) == "pending" and may_decide(r, viewer.user, directory)]
    active = [r for r in found if r.active(now)]
    others = [r for r in found if r not in to_decide and r not in active]
    manages = sorted(uid for uid, u in directory.users.items() if u.manager == viewer.user and u.active)
    return console.render(
        request,
        viewer,
        "access.html",
        {
            "to_decide": to_decide,
            "active": active,
            "others": others[:100],
            "error": error,
            "now": now,
            "may_revoke": lambda r: may_revoke(r, viewer.user, directory),
            "for_users": [viewer.user, *manages],
            "operations": sorted(ruleset.catalogue.operations),
            "done": request.query.get("done", ""),
            "done_id": request.query.get("id", ""),
        },
        status=status,
    )


async def ask(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    form = await console.form(request)
    services = console.services
    try:
        ops = [o.strip() for o in form.get("operations", "").replace(",", " ").split() if o.strip()]
        req = new_request(
            ruleset=services.store.current,
            user=form.get("user") or viewer.user,
            requested_by=viewer.user,
            operations=ops,
            data_scope=form.get("data_scope") or "own",
            until=form.get("until", ""),
            reason=form.get("reason", ""),
            approver_roles=approver_roles(services.settings),
            now=services.clock(),
        )
        req = await services.access.request(req)
    except AccessError as exc:
        return await listing(
            console, request, viewer, error=f"Not done ({exc.reason}): {exc.message}.", status=exc.status
        )
    except AccessUnavailable as exc:
        log.error("console: %s", exc)
        return await listing(console, request, viewer, error="Not done: the access store is unavailable.", status=503)
    services.audit.write(access_record(req, event="requested", actor=viewer.user, via="console", now=services.clock()))
    return redirect(f"{console.base}/access?done=requested&id={quote(req.id, safe='')}")


async def act(console: Console, request: web.Request, viewer: Viewer, *, verb: str) -> web.Response:
    services = console.services
    request_id = request.match_info["id"][:64]
    form = await console.form(request)
    directory = services.store.current.directory
    try:
        if verb == "revoke":
            req = await services.access.revoke(
                request_id, actor=viewer.user, note=form.get("note"), directory=directory
            )
        else:
            req = await services.access.decide(
                request_id, approve=verb == "approve", actor=viewer.user, note=form.get("note"), directory=directory
            )
    except AccessError as exc:
        log.info("console: %s could not %s access request %s: %s", viewer.user, verb, request_id, exc.reason)
        return await listing(
            console, request, viewer, error=f"Not done ({exc.reason}): {exc.message}.", status=exc.status
        )
    except AccessUnavailable as exc:
        log.error("console: %s", exc)
        return await listing(console, request, viewer, error="Not done: the access store is unavailable.", status=503)
    services.audit.write(access_record(req, event=req.status, actor=viewer.user, via="console", now=services.clock()))
    return redirect(f"{console.base}/access?done={req.status}&id={quote(req.id, safe='')}")


def register(console: Console, router: web.UrlDispatcher) -> None:
    console.extra_login_roles.append(lambda: frozenset(approver_roles(console.services.settings)))
    roles = lambda: page_roles(console)  # noqa: E731  (evaluated per request: rules reload)
    router.add_get(console.base + "/access", console.page(listing, roles))
    router.add_post(console.base + "/access", console.page(ask, roles))
    for verb in ("approve", "reject", "revoke"):
        router.add_post(console.base + f"/access/{{id}}/{verb}", console.page(partial(act, verb=verb), roles))
