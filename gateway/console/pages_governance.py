"""Governance in the console: who is suspended, blocked or under a step-up now; acting on a user.

    GET  {base}/governance            suspensions, blocks and step-ups in force (every instance: read
                                      from Redis), the latest governance actions, the riskiest users
    GET  {base}/users/{user}/govern   one user: risk score explained, what is in force, the actions
    POST {base}/users/{user}/govern   csrf, action (suspend | unsuspend | block | step_up), note,
                                      seconds, alert (when taken from an alert), back

Acting needs one of ``console.lift_roles`` (as lifting does) and never on one's own account; the
actions themselves are gateway/governance/actions.py (audited, reversible).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from gateway.alerts.risk import riskiest, user_risks
from gateway.console import pages_blocks, pages_triage
from gateway.console.routes import Console, redirect
from gateway.console.session import Viewer
from gateway.governance.actions import Governor, read_journal
from gateway.redishealth import STORAGE_ERRORS

log = logging.getLogger("crmgw.console")


def governor(console: Console) -> Governor:
    stage = pages_blocks._signals(console)
    return Governor(
        console.services.governance,
        console.services.settings.data_root() / "governance.jsonl",
        enforcement=stage.enforcement if stage is not None else None,
        alerts=console.alerts,
    )


async def overview(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    guard = console.services.governance
    problem = ""
    try:
        suspended = await guard.store.active(guard.now())
    except STORAGE_ERRORS as exc:
        log.error("console: suspensions cannot be read: %r", exc)
        suspended, problem = (
            guard.state.all(guard.now()),
            "the shared store (Redis) cannot be read: this instance's view",
        )
    measures, measures_problem = await pages_blocks.in_force(console)
    alerts = await pages_triage.all_alerts(console)
    return console.render(
        request,
        viewer,
        "governance.html",
        {
            "suspended": suspended,
            "problem": problem,
            "measures": measures,
            "measures_problem": measures_problem,
            "can_lift": pages_blocks.can_lift(console, viewer),
            "back": "alerts",
            "lifted": request.query.get("lifted", ""),
            "journal": read_journal(governor(console).journal, 50),
            "riskiest": riskiest(user_risks(alerts, console.services.clock()), 10),
        },
    )


async def user_govern(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    user = request.match_info["user"][:200]
    guard = console.services.governance
    alerts = await console.alerts.list(user=user, limit=pages_triage.INCIDENT_SCAN)
    measures, measures_problem = await pages_blocks.in_force(console, user=user)
    return console.render(
        request,
        viewer,
        "govern.html",
        {
            "user_id": user,
            "person": console.services.store.current.directory.get(user),
            "risk": user_risks(alerts, console.services.clock()).get(user),
            "suspension": guard.state.get(user, guard.now()),
            "measures": measures or [],
            "measures_problem": measures_problem,
            "can_govern": pages_blocks.can_lift(console, viewer) and user != viewer.user,
            "done": request.query.get("done", ""),
            "lifted": request.query.get("lifted", ""),
            "journal": [r for r in read_journal(governor(console).journal, 500) if r.get("user") == user][:20],
        },
    )


async def act(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    user = request.match_info["user"][:200]
    form = await console.form(request)
    if not pages_blocks.can_lift(console, viewer):
        return console.error_page(
            request,
            403,
            f"Only {', '.join(console.config.lift_roles)} may take governance actions.",
            "role-unauthorized",
            viewer=viewer,
        )
    action = form.get("action", "")
    try:
        record = await governor(console).act(
            action,
            user,
            actor=viewer.user,
            note=form.get("note"),
            seconds=form.get("seconds") or None,
            alert=(form.get("alert") or "")[:40] or None,
        )
    except ValueError as exc:
        status, reason = (403, "own-account") if user == viewer.user else (400, "bad-request")
        return console.error_page(request, status, f"Not done: {exc}.", reason, viewer=viewer)
    except LookupError as exc:
        return console.error_page(request, 409, f"Not done: {exc}.", "nothing-to-undo", viewer=viewer)
    except STORAGE_ERRORS as exc:
        log.error("console: %s on %s by %s failed: %r", action, user, viewer.user, exc)
        return console.error_page(
            request, 503, "Not done: the shared store (Redis) cannot be reached.", "store-unavailable", viewer=viewer
        )
    done = f"{record['action'].replace('_', '-')} of {user}" + (
        f" until {record['until']}" if record.get("until") else ""
    )
    done += _earlier_text(record)
    back = pages_blocks.back_url(console, form.get("back") or "govern", user)
    return redirect(f"{back}?{urlencode({'done': done})}")


def _earlier_text(record: dict[str, Any]) -> str:
    """What a second suspend did to the first, in words (the analyst must not be left guessing)."""
    earlier = record.get("earlier")
    if not earlier:
        return ""
    was = f"the suspension by {earlier['actor']} until {earlier['until'] or 'lifted'}"
    if record.get("kept") == "earlier":
        return f": already suspended; {was} lasts at least as long and stays in force"
    return f": replaces {was} (the later end wins)"


async def pick(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    """The overview's "act on user" form: to that user's governance page."""
    user = (request.query.get("user") or "").strip()[:200]
    if not user:
        return redirect(f"{console.base}/governance")
    return redirect(f"{console.base}/users/{quote(user, safe='')}/govern")


def register(console: Console, router: web.UrlDispatcher) -> None:
    base = console.base
    router.add_get(base + "/governance/user", console.page(pick))
    router.add_get(base + "/governance", console.page(overview))
    router.add_get(base + "/users/{user}/govern", console.page(user_govern))
    router.add_post(base + "/users/{user}/govern", console.page(act))
