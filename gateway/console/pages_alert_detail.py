"""One alert's page — why it fired (thresholds, or the detector's features against the user's own
and the peer usual, and its drivers), a chart of the user's days, the requests behind it — and the
analyst's actions on it.

Actions go through ``AlertStore.transition`` with the signed-in analyst as the actor, so each one
lands in the alert's history (who, when, what, from/to) in the fsync'd journal and shows in the
CLI and the JSON API exactly like an action taken there. Marking an alert false positive offers to
lift the block / step-up it caused (pages_blocks.py; checked by default when one is in force).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.alerts.model import TRANSITIONS, Alert, AlertNotFound, InvalidTransition, OwnAlert
from gateway.alerts.store import JournalUnavailable
from gateway.audit.search import AuditQuery, parse_time, search
from gateway.console import activity, pages_blocks, pages_triage
from gateway.console.chart import bar_chart
from gateway.console.routes import Console, redirect
from gateway.console.session import Viewer

log = logging.getLogger("crmgw.console")
ACTIONS = {
    "ack": "acknowledged",
    "resolve": "resolved",
    "false_positive": "false_positive",
    "assign": None,
    "note": None,
    "verdict": None,  # close with a verdict (and determination): gateway.alerts.model.VERDICT_STATUS
}
WINDOWS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400, "7d": 7 * 86400}
RECENT_MAX = 50


class Behind:
    """One pass over the user's audit records: per-day totals for the chart and the latest requests."""

    def __init__(self, metric: str, tz: ZoneInfo, start: datetime, end: datetime):
        self.metric, self.tz, self.start, self.end = metric, tz, start, end
        self.records: list[dict[str, Any]] = []
        self.totals: Counter[date] = Counter()

    def __call__(self, record: dict[str, Any]) -> bool:
        activity.add_to_totals(self.totals, record, self.metric, self.tz)
        when = parse_time(record.get("time"))
        if when is not None and self.start <= when <= self.end and len(self.records) < RECENT_MAX:
            self.records.append(record)
        return False  # aggregate only: the search keeps nothing


async def detail(
    console: Console, request: web.Request, viewer: Viewer, *, error: str = "", status: int = 200
) -> web.Response:
    alert = await console.alerts.get(request.match_info["id"])
    if alert is None:
        return console.error_page(request, 404, "No such alert", "alert-unknown", viewer=viewer)
    evidence = alert.evidence or {}
    metric = activity.metric_of(evidence)
    # The store writes ISO times; one it cannot parse (a hand-edited journal) charts up to now.
    first = parse_time(alert.time) or console.services.clock()
    last = parse_time(alert.last_seen) or first
    days = console.config.chart_days
    end_day: date = last.astimezone(viewer.tz).date()
    start = datetime.combine(end_day - timedelta(days=days - 1), time(0), viewer.tz)
    until = datetime.combine(end_day + timedelta(days=1), time(0), viewer.tz)
    window = WINDOWS.get(str(evidence.get("timespan")), 3600)
    behind = Behind(metric, viewer.tz, first - timedelta(seconds=window), last + timedelta(seconds=60))
    found = await asyncio.to_thread(
        search,
        console.audit_path,
        AuditQuery(user=alert.user, since=start, until=until),
        limit=1,
        max_bytes=console.config.audit_scan_bytes,
        keep=behind,
    )
    series = activity.day_series(behind.totals, end_day, days)
    band = activity.usual_range(series)
    baseline = evidence.get("baseline") if isinstance(evidence.get("baseline"), (int, float)) else None
    label = metric.replace("_", " ")
    chart = bar_chart(
        activity.activity_bars(series, metric),
        title=f"{alert.user}: {label} per day",
        band=band,
        reference=baseline,
        label_every=max(1, days // 14),
        band_label=f"usual range (10th-90th percentile of the previous {days - 1} days)",
        reference_label=f"usual daily max from the alert's evidence: {baseline}",
    )
    measures, _ = await pages_blocks.in_force(console, user=alert.user)
    return console.render(
        request,
        viewer,
        "alert.html",
        {
            "alert": alert,
            "why": activity.why_rows(evidence),
            "drivers": activity.why_drivers(evidence),
            "other": activity.other_evidence(evidence),
            "chart": chart,
            "metric": label,
            "band": band,
            "baseline": baseline,
            "days": days,
            "requests": behind.records,
            "evidence_requests": evidence.get("recent_requests") or [],
            "scan": found,
            "error": error,
            "done": request.query.get("done", ""),
            "can": _allowed_actions(alert.status),
            "alert_measures": pages_blocks.of_alert(measures, alert),
            "can_lift": pages_blocks.can_lift(console, viewer) and alert.user != viewer.user,
            "lifted": request.query.get("lifted", ""),
            "lift_roles": console.config.lift_roles,
            "suspension": console.services.governance.state.get(alert.user, console.services.clock().timestamp()),
            "can_govern": pages_blocks.can_lift(console, viewer) and alert.user != viewer.user,
            **pages_triage.triage_choices(),
        },
        status=status,
    )


def _allowed_actions(status: str) -> set[str]:
    names = {v: k for k, v in ACTIONS.items() if v}
    allowed = {names[s] for s in TRANSITIONS.get(status, ()) if s in names}
    allowed.add("note")
    if status in ("open", "acknowledged"):
        allowed.add("assign")
    return allowed


async def act(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    store = console.alerts
    form = await console.form(request)
    action = form.get("action", "")
    alert_id = request.match_info["id"]
    if action not in ACTIONS:
        return await detail(console, request, viewer, error=f"Unknown action {action[:40]!r}.", status=400)
    note = (form.get("note") or "").strip() or None
    assignee = form.get("assignee") if action == "assign" else None
    if action == "assign" and assignee is None:
        return await detail(console, request, viewer, error="Assign needs an analyst (empty unassigns).", status=400)
    if action == "verdict" and not form.get("verdict"):
        return await detail(console, request, viewer, error="Choose a verdict first.", status=400)
    if action == "note" and note is None:
        return await detail(console, request, viewer, error="Write a note first.", status=400)
    lift = action == "false_positive" and form.get("lift") == "on"
    if lift:  # refused before anything is done
        if not pages_blocks.can_lift(console, viewer):
            return console.error_page(
                request,
                403,
                f"Only {', '.join(console.config.lift_roles)} may lift a block or step-up.",
                "role-unauthorized",
                viewer=viewer,
            )
        current = await store.get(alert_id)
        if current is not None and current.user == viewer.user:
            return console.error_page(
                request, 403, "Nobody may lift their own block or step-up.", "own-block", viewer=viewer
            )
    try:
        alert = await store.transition(
            alert_id,
            actor=viewer.user,
            status=ACTIONS[action],
            assignee=assignee[:100] if assignee is not None else None,
            note=note,
            verdict=(form.get("verdict") or None) if action == "verdict" else None,
            determination=(form.get("determination") or None) if action == "verdict" else None,
        )
    except AlertNotFound:
        return console.error_page(request, 404, "No such alert", "alert-unknown", viewer=viewer)
    except OwnAlert:
        log.warning("console: %s tried %s on alert %s about themselves", viewer.user, action, alert_id)
        return console.error_page(
            request, 403, "Nobody may triage an alert about themselves.", OwnAlert.reason, viewer=viewer
        )
    except InvalidTransition as exc:
        return await detail(console, request, viewer, error=f"Not done: {exc}.", status=409)
    except ValueError as exc:
        return await detail(console, request, viewer, error=f"Not done: {exc}.", status=400)
    except JournalUnavailable as exc:
        log.error("console: %s", exc)
        return await detail(
            console, request, viewer, error="Not done: the alerts journal cannot be written.", status=503
        )
    log.info("console: %s did %s on alert %s (now %s)", viewer.user, action, alert.id, alert.status)
    lifted: list[str] = []
    if lift:
        lifted, problem, code = await _lift_its_measures(console, viewer, alert, note)
        if problem:
            return await detail(
                console,
                request,
                viewer,
                status=code,
                error=f"Marked false positive, but the block was not lifted: {problem}",
            )
    return redirect(
        f"{console.base}/alerts/{alert.id}?done={action}" + (f"&lifted={','.join(lifted)}" if lifted else "")
    )


async def _lift_its_measures(
    console: Console, viewer: Viewer, alert: Alert, note: str | None
) -> tuple[list[str], str, int]:
    """Lift what ``alert`` caused: (actions lifted, problem, HTTP status for the problem)."""
    measures, problem = await pages_blocks.in_force(console, user=alert.user)
    if measures is None:
        return [], problem, 503
    lifted: list[str] = []
    for action in sorted({m["action"] for m in pages_blocks.of_alert(measures, alert)}):
        try:
            done = await pages_blocks.lift_for(
                console,
                viewer,
                alert.user,
                action,
                note or f"alert {alert.id} marked false positive",
                fallback_alert=alert.id,
            )
        except pages_blocks.LiftRefused as exc:
            return lifted, exc.message, exc.status
        lifted += [x.measure.action for x in done]
    return lifted, "", 200


def register(console: Console, router: web.UrlDispatcher) -> None:
    router.add_get(console.base + "/alerts/{id}", console.page(detail))
    router.add_post(console.base + "/alerts/{id}/action", console.page(act))
