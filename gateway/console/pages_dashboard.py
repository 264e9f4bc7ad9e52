"""The dashboard: the analysts' overview, as server-rendered SVG charts (no script, no CDN).

    GET {base}/dashboard?days=14&team=&role=

* alerts per day by level (stacked) and alerts by type, from the alert store;
* records exported per day and the top exporters, denials by rule, from the audit log (one
  bounded pass, newest first, the same reader as the decisions search; counted exactly as the
  signals stage counts: ``detectors.events.count_event``);
* the riskiest users (gateway/alerts/risk.py).

``team`` and ``role`` keep the users of the directory (rules/users.yaml) with that team / role; a
user the directory does not know is then left out.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from detectors.events import count_event
from gateway.alerts.model import LEVELS, parse_time
from gateway.alerts.risk import riskiest, user_risks
from gateway.audit.search import AuditQuery, search
from gateway.console import pages_triage
from gateway.console.chart import Bar, bar_chart
from gateway.console.chart_stacked import ranked_bars, stacked_chart
from gateway.console.routes import Console
from gateway.console.session import Viewer

RANGES = (1, 7, 14, 30, 90)


class Traffic:
    """One pass over the audit log: exports per day and per user, denials per rule."""

    def __init__(self, tz: ZoneInfo, keep_user: Any):
        self.tz, self.keep_user = tz, keep_user
        self.exported: Counter[date] = Counter()
        self.exporters: Counter[str] = Counter()
        self.denials: Counter[str] = Counter()
        self.requests = 0

    def __call__(self, record: dict[str, Any]) -> bool:
        if not self.keep_user(record.get("user")):
            return False
        self.requests += 1
        if record.get("effect") == "deny":
            rules = record.get("rules") or []
            self.denials[str(rules[0]) if rules else f"({record.get('reason') or 'no rule'})"] += 1
        try:
            inc = count_event(record)
        except (KeyError, ValueError, TypeError):
            return False
        if inc is not None and inc.counts.get("records_exported"):
            n = inc.counts["records_exported"]
            self.exported[inc.time.astimezone(self.tz).date()] += n
            self.exporters[inc.user] += n
        return False  # aggregate only


def _days(value: str | None) -> int:
    try:
        days = int(value or 14)
    except ValueError:
        return 14
    return days if days in RANGES else 14


async def dashboard(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    q = request.query
    days = _days(q.get("days"))
    team, role = (q.get("team") or "").strip()[:100], (q.get("role") or "").strip()[:100]
    directory = console.services.store.current.directory

    def keep_user(user: Any) -> bool:
        if not (team or role):
            return True
        person = directory.get(str(user)) if user else None
        return (
            person is not None
            and (not team or person.team == team)
            and (not role or role in person.roles or role in person.effective_roles)
        )

    now = console.services.clock()
    end_day = now.astimezone(viewer.tz).date()
    start = datetime.combine(end_day - timedelta(days=days - 1), time(0), viewer.tz)
    every = await pages_triage.all_alerts(console)
    alerts = [a for a in every if keep_user(a.user) and parse_time(a.time) >= start]
    day_list = [end_day - timedelta(days=i) for i in range(days - 1, -1, -1)]
    labels = [d.strftime("%m-%d") for d in day_list]
    per_level = {lv: [0.0] * days for lv in reversed(LEVELS)}  # low at the bottom
    for a in alerts:
        i = (parse_time(a.time).astimezone(viewer.tz).date() - day_list[0]).days
        if 0 <= i < days:
            per_level[a.level][i] += 1
    by_type = Counter(a.type for a in alerts).most_common(10)
    traffic = Traffic(viewer.tz, keep_user)
    found = await asyncio.to_thread(
        search,
        console.audit_path,
        AuditQuery(since=start),
        limit=1,
        max_bytes=console.config.audit_scan_bytes,
        keep=traffic,
    )
    every_day = max(1, days // 14)
    risks = riskiest(user_risks([a for a in every if keep_user(a.user)], now), 10)
    charts = {
        "alerts_per_day": stacked_chart(labels, per_level, title="alerts per day by level", label_every=every_day),
        "alerts_by_type": ranked_bars([(t, float(n)) for t, n in by_type], title="alerts by type"),
        "exported_per_day": bar_chart(
            [
                Bar(lbl, traffic.exported.get(d, 0), f"{d}: {traffic.exported.get(d, 0)} records exported")
                for lbl, d in zip(labels, day_list, strict=True)
            ],
            title="records exported per day",
            label_every=every_day,
        ),
        "top_exporters": ranked_bars(
            [(u, float(n)) for u, n in traffic.exporters.most_common(10)], title="top exporters"
        ),
        "denials_by_rule": ranked_bars(
            [(r, float(n)) for r, n in traffic.denials.most_common(10)], title="denials by rule"
        ),
        "riskiest": ranked_bars([(r.user, r.score) for r in risks], title="riskiest users"),
    }
    teams = sorted({u.team for u in directory.users.values() if u.team})
    roles = sorted({r for u in directory.users.values() for r in u.roles})
    return console.render(
        request,
        viewer,
        "dashboard.html",
        {
            "charts": charts,
            "days": days,
            "ranges": RANGES,
            "team": team,
            "role": role,
            "teams": teams,
            "roles": roles,
            "alert_total": len(alerts),
            "requests": traffic.requests,
            "scan": found,
            "levels": LEVELS,
        },
    )


def register(console: Console, router: web.UrlDispatcher) -> None:
    router.add_get(console.base + "/dashboard", console.page(dashboard))
