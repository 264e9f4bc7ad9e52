"""Blocks and step-ups in the console: shown on the queue, the user page and an alert; lifted by analysts.

What is shown comes from the shared store (Redis: what every instance enforces; see
gateway/signals/blocks.py). Lifting is a POST through :meth:`Console.page` (CSRF token + Origin),
allowed only to ``console.lift_roles`` (default security_analyst) and never on one's own block;
the lift is recorded in the causing alert's history with the analyst as actor, plus a log line.

    POST {base}/users/{user}/lift   csrf, note, action (block | step_up | empty: all),
                                    back (alerts | user | govern | alert:<id> | incident:<id>)
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.alerts.model import Alert
from gateway.console.routes import Console, redirect
from gateway.console.session import Viewer
from gateway.redishealth import STORAGE_ERRORS
from gateway.signals import blocks
from gateway.signals.enforcement import ACTIONS, Measure
from gateway.signals.stage import SignalsStage

log = logging.getLogger("crmgw.console")


class LiftRefused(Exception):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def can_lift(console: Console, viewer: Viewer) -> bool:
    return bool(viewer.identity.roles & frozenset(console.config.lift_roles))


def _signals(console: Console) -> SignalsStage | None:
    """The signals stage, when the gateway runs one: until the app has started (or with a test's
    own stand-in) ``services.signals`` is a part without blocks to show or lift."""
    stage = console.services.signals
    return stage if isinstance(stage, SignalsStage) else None


def row(m: Measure) -> dict[str, Any]:
    return {
        "user": m.user,
        "action": m.action,
        "rule": m.rule,
        "since": m.since or None,
        "until": m.until,
        "alert": m.alert or None,
    }


async def in_force(console: Console, user: str | None = None) -> tuple[list[dict[str, Any]] | None, str]:
    """(rows, problem): the blocks and step-ups in force; None when signals are off or unreachable."""
    stage = _signals(console)
    if stage is None:
        return None, "behaviour signals are not running"
    try:
        found = await blocks.active(stage.enforcement, stage.now(), user=user)
    except STORAGE_ERRORS as exc:
        log.error("console: blocks cannot be read: %r", exc)
        return None, "the shared store (Redis) cannot be read"
    return [row(m) for m in found], ""


def of_alert(rows: list[dict[str, Any]] | None, alert: Alert) -> list[dict[str, Any]]:
    """The measures ``alert`` caused: those naming it, or (not named yet) its user's by its rule."""
    return [
        r
        for r in rows or ()
        if r["user"] == alert.user
        and (r["alert"] == alert.id or (r["alert"] is None and alert.rule and r["rule"] == alert.rule))
    ]


async def lift_for(
    console: Console, viewer: Viewer, user: str, action: str | None, note: str | None, fallback_alert: str | None = None
) -> list[blocks.Lifted]:
    """Lift as ``viewer``; raises LiftRefused (role, own block, bad request, store down)."""
    if not can_lift(console, viewer):
        raise LiftRefused(
            403, "role-unauthorized", f"Only {', '.join(console.config.lift_roles)} may lift a block or step-up."
        )
    if user == viewer.user:
        raise LiftRefused(403, "own-block", "Nobody may lift their own block or step-up; ask another analyst.")
    stage = _signals(console)
    if stage is None:
        raise LiftRefused(503, "signals-unavailable", "Behaviour signals are not running: nothing to lift.")
    try:
        return await blocks.lift(
            stage.enforcement,
            console.alerts,
            user=user,
            action=action,
            actor=viewer.user,
            note=note or "",
            now=stage.now(),
            fallback_alert=fallback_alert,
        )
    except ValueError as exc:
        raise LiftRefused(400, "bad-request", f"Not lifted: {exc}.") from None
    except STORAGE_ERRORS as exc:
        log.error("console: lift of %s by %s failed: %r", user, viewer.user, exc)
        raise LiftRefused(
            503, "signals-unavailable", "Not lifted: the shared store (Redis) cannot be reached."
        ) from None


def done_text(lifted: list[blocks.Lifted]) -> str:
    return ", ".join(f"{x.measure.action.replace('_', '-')} of {x.measure.user}" for x in lifted)


async def lift(console: Console, request: web.Request, viewer: Viewer) -> web.StreamResponse:
    user = request.match_info["user"][:200]
    form = await console.form(request)
    action = form.get("action") or None
    if action is not None and action not in ACTIONS:
        return console.error_page(request, 400, "Not lifted", "action-unknown", viewer=viewer)
    back = back_url(console, form.get("back"), user)
    try:
        lifted = await lift_for(console, viewer, user, action, form.get("note"))
    except LiftRefused as exc:
        return console.error_page(request, exc.status, exc.message, exc.reason, viewer=viewer)
    if not lifted:
        return console.error_page(
            request, 409, f"Nothing in force for {user} to lift.", "nothing-to-lift", viewer=viewer
        )
    log.info("console: %s lifted %s", viewer.user, done_text(lifted))
    return redirect(f"{back}?lifted={quote(user, safe='')}")


def back_url(console: Console, back: str | None, user: str) -> str:
    """Where a form returns to: a page of this console only (ids are quoted, never a free URL)."""
    kind, _, ident = (back or "").partition(":")
    if kind == "alerts":
        return f"{console.base}/alerts"
    if kind in ("alert", "incident") and ident:
        return f"{console.base}/{kind}s/{quote(ident[:40], safe='')}"
    if kind == "govern":
        return f"{console.base}/users/{quote(user, safe='')}/govern"
    return f"{console.base}/users/{quote(user, safe='')}"


def register(console: Console, router: web.UrlDispatcher) -> None:
    router.add_post(console.base + "/users/{user}/lift", console.page(lift))
