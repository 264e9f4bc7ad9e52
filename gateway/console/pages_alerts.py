"""The alert queue: open alerts by last activity, each page most severe first, filters, counts per level, pages, risk scores,
the blocks in force, saved filters and the bulk triage form (pages_triage.py answers it).

One alert's page and its actions are pages_alert_detail.py.
"""

from __future__ import annotations

from aiohttp import web

from gateway.alerts.model import LEVELS, STATUSES, Alert
from gateway.alerts.risk import user_risks
from gateway.console import pages_blocks, pages_triage
from gateway.console import saved_filters as saved_filters_module
from gateway.console.filters import FilterError, local_datetime, text_param
from gateway.console.routes import Console
from gateway.console.session import Viewer

LEVEL_RANK = {level: i for i, level in enumerate(reversed(LEVELS))}  # critical first


async def queue(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    store = console.alerts  # Redis down: read from the journal, the page says the store is degraded
    q = request.query
    error, status_param = "", q.get("status", "")
    size = console.config.page_size
    page = _page(q.get("page"))
    try:
        statuses = _statuses(status_param)
        level = q.get("level") or None
        if level is not None and level not in LEVELS:
            raise FilterError(f"level must be one of {', '.join(LEVELS)}")
        since = local_datetime(q.get("since"), viewer.tz, "since")
        until = local_datetime(q.get("until"), viewer.tz, "until")
        # Pages cut the order of last activity (a recurrence, a repeat, an escalation brings an old
        # alert back to page 1: an echo day joined to a week-old alert must not sink out of
        # sight); each page is then sorted most severe first. The store lists newest-raised first,
        # so the candidates are the same bounded scan the risk scores read.
        found = await store.list(
            status=statuses,
            level=level,
            type=text_param(q, "type"),
            user=text_param(q, "user"),
            since=since,
            until=until,
            limit=pages_triage.INCIDENT_SCAN,
        )
    except FilterError as exc:
        error, found = str(exc), []
    found.sort(key=last_activity, reverse=True)
    alerts = found[(page - 1) * size : page * size]
    alerts.sort(key=lambda a: (not a.is_open, LEVEL_RANK.get(a.level, 9), _neg(a.id)))
    counts = await store.counts()
    measures, measures_problem = await pages_blocks.in_force(console)
    filters = {k: q[k] for k in saved_filters_module.FIELDS if q.get(k)}
    return console.render(
        request,
        viewer,
        "alerts.html",
        {
            "alerts": alerts,
            "counts": counts,
            "error": error,
            "q": q,
            "status_param": status_param,
            "statuses": STATUSES,
            "levels": LEVELS,
            "degraded": store.health()["degraded"],
            "measures": measures,
            "measures_problem": measures_problem,
            "back": "alerts",
            "can_lift": pages_blocks.can_lift(console, viewer),
            "lifted": q.get("lifted", ""),
            "done": q.get("done", ""),
            "page": page,
            "has_next": len(found) > page * size,
            "filter_query": saved_filters_module.query_of(filters),
            "saved": pages_triage.saved_filters(console).of(viewer.user),
            "risks": user_risks(await pages_triage.all_alerts(console), console.services.clock()),
            **pages_triage.triage_choices(),
        },
        status=400 if error else 200,
    )


def last_activity(alert: Alert) -> tuple[str, str]:
    """When the alert last took new evidence (ISO times sort as text), then the newest id."""
    return max(alert.last_seen, alert.time), alert.id


def _page(value: str | None) -> int:
    try:
        return min(max(int(value or 1), 1), 1000)
    except ValueError:
        return 1


def _neg(alert_id: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in alert_id)  # newest (largest ULID) first


def _statuses(value: str) -> set[str] | None:
    if value == "":
        return {"open", "acknowledged"}
    if value == "all":
        return None
    if value not in STATUSES:
        raise FilterError(f"status must be all or one of {', '.join(STATUSES)}")
    return {value}


def register(console: Console, router: web.UrlDispatcher) -> None:
    router.add_get(console.base + "/alerts", console.page(queue))
