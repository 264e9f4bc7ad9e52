"""Four-eyes approvals in the console: what the viewer may decide, and approve / reject forms.

Open to the console roles and to every potential approver (a role named in a rule's
``approval.approvers.roles``, or the roles of anyone who is some user's ``manager``): they may sign
in, but the other console pages still need a console role. The page lists

* the pending requests the viewer may decide (an approver role, or the requester's manager; never
  their own), each with an approve and a reject form (CSRF token + Origin check, a note);
* the viewer's own pending requests, without any button (another person decides them);
* recent decisions the viewer may see (those they may decide, or their own).

Deciding goes through ``ApprovalStore.decide`` with the viewer as the actor (checked again there:
a forged POST for one's own request is refused 403 ``own-request``), then one audit line
(``kind: approval``, ``via: console``).

    GET  {base}/approvals
    POST {base}/approvals/{id}/approve | /reject     csrf, note
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from urllib.parse import quote

from aiohttp import web

from gateway.approvals.gate import decision_record
from gateway.approvals.model import ApprovalError, may_approve
from gateway.approvals.store import ApprovalsUnavailable
from gateway.console.routes import Console, redirect
from gateway.console.session import Viewer

log = logging.getLogger("crmgw.console")


def approver_roles(console: Console) -> frozenset[str]:
    """Who may open the approvals page: console roles, approver roles, managers' roles."""
    ruleset = console.services.store.current
    roles = set(console.roles)
    for rule in ruleset.engine.policy.rules.values():
        if rule.approval is not None:
            roles |= rule.approval.roles
    directory = ruleset.directory
    for user in directory.users.values():
        manager = directory.get(user.manager) if user.manager else None
        if manager is not None:
            roles |= manager.roles
    return frozenset(roles)


async def listing(
    console: Console, request: web.Request, viewer: Viewer, *, error: str = "", status: int = 200
) -> web.Response:
    services = console.services
    directory = services.store.current.directory
    now: datetime = services.clock()
    found = await services.approvals.list(limit=500)
    mine_to_decide = [
        a for a in found if a.status == "pending" and not a.expired(now) and may_approve(a, viewer.user, directory)
    ]
    own = [a for a in found if a.requester == viewer.user and a.status == "pending" and not a.expired(now)]
    decided = [
        a
        for a in found
        if a.status != "pending" and (a.requester == viewer.user or may_approve(a, viewer.user, directory))
    ][:50]
    return console.render(
        request,
        viewer,
        "approvals.html",
        {
            "to_decide": mine_to_decide,
            "own": own,
            "decided": decided,
            "error": error,
            "now": now,
            "done": request.query.get("done", ""),
            "done_id": request.query.get("id", ""),
        },
        status=status,
    )


async def decide(console: Console, request: web.Request, viewer: Viewer, *, verb: str) -> web.Response:
    services = console.services
    approval_id = request.match_info["id"][:64]
    form = await console.form(request)
    try:
        approval = await services.approvals.decide(
            approval_id,
            approve=verb == "approve",
            actor=viewer.user,
            note=form.get("note"),
            directory=services.store.current.directory,
        )
    except ApprovalError as exc:
        log.info("console: %s could not %s approval %s: %s", viewer.user, verb, approval_id, exc.reason)
        return await listing(
            console, request, viewer, error=f"Not done ({exc.reason}): {exc.message}.", status=exc.status
        )
    except ApprovalsUnavailable as exc:
        log.error("console: %s", exc)
        return await listing(
            console, request, viewer, error="Not done: the approvals store is unavailable.", status=503
        )
    services.audit.write(decision_record(approval, actor=viewer.user, via="console", now=services.clock()))
    log.info("console: %s %s approval %s of %s", viewer.user, approval.status, approval.id, approval.requester)
    return redirect(f"{console.base}/approvals?done={approval.status}&id={quote(approval.id, safe='')}")


def register(console: Console, router: web.UrlDispatcher) -> None:
    console.extra_login_roles.append(lambda: approver_roles(console))
    roles = lambda: approver_roles(console)  # noqa: E731  (evaluated per request: rules reload)
    router.add_get(console.base + "/approvals", console.page(listing, roles))
    for verb in ("approve", "reject"):
        router.add_post(console.base + f"/approvals/{{id}}/{verb}", console.page(partial(decide, verb=verb), roles))
