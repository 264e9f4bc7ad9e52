"""Bulk triage, incidents and saved filters in the console.

    POST {base}/alerts/bulk             csrf, id (repeated), action (ack | assign | resolve),
                                        assignee, verdict, determination, note, back
    GET  {base}/incidents               the queue as incidents (gateway/alerts/incidents.py)
    GET  {base}/incidents/{id}          one incident: its alerts, timeline, related alerts, actions
    POST {base}/incidents/{id}/action   the same fields as bulk, applied to the incident's alerts
    POST {base}/filters                 csrf, name, op (save | delete) + the queue's filter fields

Every change goes through gateway/alerts/triage.py (one journalled transition per alert, the
analyst as actor); like every console POST, :meth:`Console.page` checked the CSRF token and Origin.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from aiohttp import web

from gateway.alerts.incidents import find_incident, group_incidents, shared_evidence
from gateway.alerts.model import DETERMINATIONS, LEVELS, VERDICTS, Alert
from gateway.alerts.risk import user_risks
from gateway.alerts.store import JournalUnavailable
from gateway.alerts.triage import BULK_ACTIONS, bulk_triage
from gateway.console import pages_blocks
from gateway.console.filters import FilterError, local_datetime, text_param
from gateway.console.routes import Console, redirect
from gateway.console.saved_filters import SavedFilters, query_of
from gateway.console.session import Viewer

log = logging.getLogger("crmgw.console")
INCIDENT_SCAN = 5000  # alerts looked at to build incidents and risk scores


def saved_filters(console: Console) -> SavedFilters:
    return SavedFilters(console.services.settings.data_root() / "console-filters.json")


def triage_choices() -> dict[str, Any]:
    return {"verdicts": VERDICTS, "determinations": DETERMINATIONS, "bulk_actions": tuple(BULK_ACTIONS)}


async def all_alerts(console: Console, **filters: Any) -> list[Alert]:
    return await console.alerts.list(limit=INCIDENT_SCAN, **filters)


async def _apply(console: Console, viewer: Viewer, ids: list[str], form: dict[str, str]) -> tuple[str, int]:
    """(message, HTTP status) after a bulk action."""
    try:
        result = await bulk_triage(
            console.alerts,
            ids,
            actor=viewer.user,
            action=form.get("action", ""),
            assignee=(form.get("assignee") or "")[:100],
            verdict=form.get("verdict") or None,
            determination=form.get("determination") or None,
            note=(form.get("note") or "").strip() or None,
        )
    except ValueError as exc:
        return f"Not done: {exc}.", 400
    except JournalUnavailable:
        return "Not done: the alerts journal cannot be written.", 503
    log.info(
        "console: %s bulk %s on %d alert(s), %d refused",
        viewer.user,
        form.get("action"),
        len(result.done),
        len(result.refused),
    )
    text = f"{len(result.done)} alert(s) updated"
    if result.refused:
        text += (
            f"; {len(result.refused)} refused ("
            + "; ".join(f"{k}: {v}" for k, v in list(result.refused.items())[:5])
            + ")"
        )
    return text, 200


async def bulk(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    posted = await request.post()
    ids = [str(v)[:40] for v in posted.getall("id", [])]
    form = await console.form(request)
    text, status = await _apply(console, viewer, ids, form)
    if status != 200:
        return console.error_page(request, status, text, "bulk-refused", viewer=viewer)
    back = query_of(dict(parse_qsl(form.get("back") or "")))  # the queue's own filters only
    return redirect(f"{console.base}/alerts?" + "&".join(p for p in (back, urlencode({"done": text})) if p))


async def incidents_page(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    q = request.query
    error = ""
    try:
        level = q.get("level") or None
        if level is not None and level not in LEVELS:
            raise FilterError(f"level must be one of {', '.join(LEVELS)}")
        alerts = await all_alerts(
            console,
            user=text_param(q, "user"),
            since=local_datetime(q.get("since"), viewer.tz, "since"),
            until=local_datetime(q.get("until"), viewer.tz, "until"),
        )
    except FilterError as exc:
        error, alerts = str(exc), []
    incidents = group_incidents(alerts)
    if q.get("status", "") == "":
        incidents = [i for i in incidents if i.is_open]
    if level:
        incidents = [i for i in incidents if i.severity == level]
    risks = user_risks(alerts, console.services.clock())
    return console.render(
        request,
        viewer,
        "incidents.html",
        {"incidents": incidents[: console.config.page_size], "q": q, "error": error, "levels": LEVELS, "risks": risks},
        status=400 if error else 200,
    )


async def _incident(console: Console, incident_id: str) -> tuple[Any, list[Alert]]:
    alerts = await all_alerts(console)
    return find_incident(group_incidents(alerts), incident_id), alerts


async def incident_page(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    incident, alerts = await _incident(console, request.match_info["id"])
    if incident is None:
        return console.error_page(request, 404, "No such incident", "incident-unknown", viewer=viewer)
    near = [a for a in alerts if abs(a.epoch - incident.alerts[0].epoch) < timedelta(days=7).total_seconds()]
    measures, _ = await pages_blocks.in_force(console, user=incident.user)
    return console.render(
        request,
        viewer,
        "incident.html",
        {
            "incident": incident,
            "timeline": incident.timeline(),
            "related": shared_evidence(incident, near),
            "risk": user_risks(alerts, console.services.clock()).get(incident.user),
            "measures": measures or [],
            "suspension": console.services.governance.state.get(incident.user, console.services.clock().timestamp()),
            "done": request.query.get("done", ""),
            "can_govern": pages_blocks.can_lift(console, viewer) and incident.user != viewer.user,
            **triage_choices(),
        },
    )


async def incident_action(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    incident, _ = await _incident(console, request.match_info["id"])
    if incident is None:
        return console.error_page(request, 404, "No such incident", "incident-unknown", viewer=viewer)
    form = await console.form(request)
    # The analyst decided on the alerts the page showed (its hidden ``id`` fields), never on the
    # incident as it is now: one raised since (a critical joining a "noise" incident) must be seen
    # before any verdict covers it, so a changed incident is refused 409 and shown again.
    shown = set((await request.post()).getall("id", []))
    unseen = [a.id for a in incident.alerts if a.id not in shown]
    if not shown or unseen:
        log.warning("console: %s acted on incident %s with %d unseen alert(s)", viewer.user, incident.id, len(unseen))
        return console.error_page(
            request,
            409,
            f"Not done: the incident has {len(unseen)} alert(s) this page did not show; reload it and check them.",
            "incident-changed",
            viewer=viewer,
        )
    # Acknowledging / assigning concerns what is still open; a verdict closes every alert not yet
    # closed with it (one already closed keeps its history and is corrected only if it differs).
    ids = [a.id for a in incident.alerts if a.is_open or form.get("action") == "resolve"]
    text, status = await _apply(console, viewer, ids, form)
    if status != 200:
        return console.error_page(request, status, text, "bulk-refused", viewer=viewer)
    return redirect(f"{console.base}/incidents/{quote(incident.id, safe='')}?" + urlencode({"done": text}))


async def filters_post(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    form = await console.form(request)
    store = saved_filters(console)
    name = form.get("name") or ""
    try:
        if form.get("op") == "delete":
            store.delete(viewer.user, name)
        else:
            store.save(viewer.user, name, form)
    except ValueError as exc:
        return console.error_page(request, 400, f"Filter not saved: {exc}.", "filter-refused", viewer=viewer)
    return redirect(f"{console.base}/alerts")


def register(console: Console, router: web.UrlDispatcher) -> None:
    base = console.base
    router.add_post(base + "/alerts/bulk", console.page(bulk))  # before /alerts/{id}: most specific first
    router.add_get(base + "/incidents", console.page(incidents_page))
    router.add_get(base + "/incidents/{id}", console.page(incident_page))
    router.add_post(base + "/incidents/{id}/action", console.page(incident_action))
    router.add_post(base + "/filters", console.page(filters_post))
