"""Pages built on the audit log and the rules: decisions (search and one decision), a user, the rules.

The decisions search is in pages_audit_search (the audit index, pages, CSV export). The other
audit searches here read the files in a worker thread, bounded by ``audit_scan_bytes``; a page
says when the bound cut a search short. One decision's full explanation is the audit line plus the
same request re-evaluated by ``gateway.explain`` (every rule and criterion with its reason), which
uses the rules loaded now: the page says when that revision differs from the one that decided.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.audit.search import AuditQuery, SearchResult, find_decision, parse_time, search
from gateway.console import activity, pages_audit_search, pages_blocks, pages_replay
from gateway.console.chart import bar_chart
from gateway.console.filters import FilterError, local_datetime, to_local_input
from gateway.console.routes import Console
from gateway.console.session import Viewer, zone_named
from gateway.explain import DEFAULT_IP, DEFAULT_METHOD, decision_dict, default_time, explain, trace_rows

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
Record = dict[str, Any]  # one audit line


async def _search(
    console: Console, query: AuditQuery, limit: int | None = None, keep: Callable[[Record], bool] | None = None
) -> SearchResult:
    return await asyncio.to_thread(
        search,
        console.audit_path,
        query,
        limit=limit or console.config.page_size,
        max_bytes=console.config.audit_scan_bytes,
        keep=keep,
    )


def reevaluate(console: Console, record: Record) -> tuple[dict[str, Any] | None, str]:
    """The recorded request decided again by the current rules: (decision_dict, problem)."""
    when = parse_time(record.get("time"))
    if not record.get("user") or when is None or not record.get("method") or not record.get("path"):
        return None, "the record lacks the user, time, method or path needed to re-evaluate it"
    target = record["path"] + ("?" + urlencode(record["query"]) if record.get("query") else "")
    ruleset = console.services.store.current  # one snapshot: the trace's condition trees come from its rules
    try:
        result = explain(
            ruleset,
            user=record["user"],
            method=record["method"],
            path=target,
            at=when,
            ip=record.get("client_ip"),
            mfa=bool(record.get("mfa")),
            country=record.get("country"),
            geo=console.services.geo,
        )
    except ValueError as exc:
        return None, f"cannot re-evaluate: {exc}"
    return decision_dict(result.decision, result.ctx, ruleset), ""


async def _decision(console: Console, request: web.Request) -> tuple[Record | None, dict[str, Any] | None, str]:
    record = await asyncio.to_thread(
        find_decision, console.audit_path, request.match_info["id"][:100], max_bytes=console.config.audit_scan_bytes
    )
    if record is None:
        return None, None, ""
    trace, problem = reevaluate(console, record)
    return record, trace, problem


async def decision(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    record, trace, problem = await _decision(console, request)
    if record is None:
        return console.error_page(request, 404, "No such decision", "decision-unknown", viewer=viewer)
    return console.render(
        request,
        viewer,
        "decision.html",
        {
            "record": record,
            "trace": trace,
            "problem": problem,
            "current": console.services.store.current.revision,
            "trace_rows": trace_rows,
        },
    )


async def decision_api(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    record, trace, problem = await _decision(console, request)
    if record is None:
        return console.json_error(request, 404, "not-found", "decision-unknown")
    return console.json({"decision": record, "reevaluated": trace, "problem": problem or None})


class UserActivity:
    """One pass over a user's audit records: recent decisions and denials, hours and countries."""

    def __init__(self, user_tz: ZoneInfo):
        self.recent: list[Record] = []
        self.denials: list[Record] = []
        self.hours = [0] * 24
        self.countries: Counter[str] = Counter()
        self.tz = user_tz
        self.total = 0

    def __call__(self, record: Record) -> bool:
        self.total += 1
        when = parse_time(record.get("time"))
        if when is not None:
            self.hours[when.astimezone(self.tz).hour] += 1
        self.countries[record.get("country") or "unknown"] += 1
        if len(self.recent) < 50:
            self.recent.append(record)
        if record.get("effect") == "deny" and len(self.denials) < 25:
            self.denials.append(record)
        return False


async def user_page(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    user_id = request.match_info["user"][:200]
    person = console.services.store.current.directory.get(user_id)
    user_tz = zone_named(person.timezone) if person is not None else viewer.tz
    since = console.services.clock() - timedelta(days=console.config.history_days)
    seen = UserActivity(user_tz)
    found = await _search(console, AuditQuery(user=user_id, since=since), limit=1, keep=seen)
    alerts = await console.alerts.list(user=user_id, limit=50)
    measures, measures_problem = await pages_blocks.in_force(console, user=user_id)
    hours_chart = bar_chart(
        activity.hour_bars(seen.hours),
        title=f"{user_id}: requests per hour of day ({user_tz.key}), last {console.config.history_days} days",
        height=160,
        label_every=2,
    )
    return console.render(
        request,
        viewer,
        "user.html",
        {
            "user_id": user_id,
            "person": person,
            "user_tz": user_tz.key,
            "seen": seen,
            "found": found,
            "alerts": alerts,
            "usual_hours": activity.usual_hours(seen.hours),
            "hours_chart": hours_chart,
            "countries": seen.countries.most_common(10),
            "days": console.config.history_days,
            "measures": measures,
            "measures_problem": measures_problem,
            "back": "user",
            "can_lift": pages_blocks.can_lift(console, viewer) and user_id != viewer.user,
            "lifted": request.query.get("lifted", ""),
        },
    )


async def rules_page(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    store = console.services.store
    ruleset = store.current
    shadows = [r for r in ruleset.engine.policy.rules.values() if r.mode == "shadow"]
    since = console.services.clock() - timedelta(days=console.config.history_days)
    records: list[Record] = []

    def keep(record: Record) -> bool:
        records.append({"shadow": record.get("shadow")})
        return False

    found = await _search(console, AuditQuery(shadow=True, since=since), limit=1, keep=keep)
    counts = activity.shadow_counts(records)
    explained, error, form = None, "", _explain_form(request, viewer, console)
    if request.query.get("user"):
        try:
            # Not form["at"]: that is "now" cut to the minute for display; the CLI's default is now.
            at = local_datetime(request.query.get("at"), viewer.tz, "time") or default_time(console.services.clock)
            if form["method"] not in METHODS:
                raise FilterError(f"method must be one of {', '.join(METHODS)}")
            if not form["path"].startswith("/"):
                raise FilterError("path must start with /")
            result = explain(
                ruleset,
                user=form["user"],
                method=form["method"],
                path=form["path"],
                at=at,
                ip=form["ip"] or None,
                mfa=form["mfa"],
                geo=console.services.geo,
            )
            explained = decision_dict(result.decision, result.ctx, ruleset)
        except ValueError as exc:  # FilterError, a bad IP address
            error = str(exc)
    replay = await pages_replay.draft_diff(console, request)  # the draft folder's diff on this audit log
    return console.render(
        request,
        viewer,
        "rules.html",
        {
            "health": store.health(),
            "shadows": shadows,
            "counts": counts,
            "found": found,
            "form": form,
            "explained": explained,
            "error": error,
            "methods": METHODS,
            "days": console.config.history_days,
            "trace_rows": trace_rows,
            "replay": replay,
        },
        status=400 if error or (replay and replay.error) else 200,
    )


def _explain_form(request: web.Request, viewer: Viewer, console: Console) -> dict[str, Any]:
    """The form's values; what is not given takes the defaults ``crmgw explain`` uses. An IP field
    sent empty means "unknown", like ``--ip ''`` (a missing one is the default address)."""
    q = request.query
    now: datetime = default_time(console.services.clock)
    return {
        "user": (q.get("user") or "")[:200],
        "method": (q.get("method") or DEFAULT_METHOD).upper(),
        "path": (q.get("path") or "/api/customers")[:2048],
        "at": (q.get("at") or to_local_input(now, viewer.tz)),
        "ip": q.get("ip", DEFAULT_IP)[:64],
        "mfa": q.get("mfa") == "on",
    }


def register(console: Console, router: web.UrlDispatcher) -> None:
    base = console.base
    router.add_get(base + "/decisions", console.page(pages_audit_search.decisions))
    router.add_get(base + "/decisions/{id}", console.page(decision))
    router.add_get(base + "/users/{user}", console.page(user_page))
    router.add_get(base + "/rules", console.page(rules_page))
    router.add_get(base + "/api/decisions", console.api(pages_audit_search.decisions_api))
    router.add_get(base + "/api/decisions.csv", console.api(pages_audit_search.decisions_csv))
    router.add_get(base + "/api/decisions/{id}", console.api(decision_api))
    pages_replay.register(console, router)  # GET .../api/rules/replay?draft=/path
