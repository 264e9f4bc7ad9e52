"""The security console: analysts triage alerts, admins look at rules and decisions, in a browser.

    config.py          ConsoleConfig: the ``console:`` settings section (roles, session secret, ...)
    session.py         token cookie, identity via the gateway's identity stage, CSRF, Origin check
    routes.py          Console: the role guard, security headers, login/logout, static files
    pages_alerts.py    the alert queue (filters, counts, pages, risk, bulk form)
    pages_alert_detail.py one alert (why, chart, requests behind it) and the analyst's actions on it
    pages_audit.py     decisions search and detail, one user's view, rules + explain; a small JSON API
    pages_replay.py    the rules page's draft replay (and its JSON API)
    pages_blocks.py    blocks / step-ups in force (queue, user, alert) and lifting them (lift_roles)
    pages_triage.py    bulk triage with verdicts, incidents, saved filters
    pages_governance.py suspend / block / step-up a user, what is in force, risk explained
    pages_dashboard.py the overview charts (alerts, exports, denials, riskiest users)
    pages_approvals.py four-eyes approvals: also open to approvers
    pages_access.py    access requests: managers and approvers too
    activity.py        per-day activity, usual range/hours/countries, shadow counts (pure functions)
    chart.py           inline SVG bar charts rendered on the server (chart_stacked.py: stacked, ranked)
    saved_filters.py   per-analyst saved queue filters (a JSON file in the data folder)
    filters.py         filter-form parsing (times in the analyst's time zone)
    templating.py      Jinja filters (autoescape is on everywhere)
    templates/ static/ the pages, console.css and console.js (served by the gateway; no CDN)

Pages live under ``{admin prefix}/console/`` (default ``/_gw/console/``). The imports go one way:
this module registers routes.py and the pages; each page imports routes.py (and pages it shows
parts of), never this module's register_console.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.console import (
    pages_access,
    pages_alert_detail,
    pages_alerts,
    pages_approvals,
    pages_audit,
    pages_blocks,
    pages_dashboard,
    pages_governance,
    pages_triage,
    routes,
)
from gateway.console.config import ConsoleConfig
from gateway.console.routes import CONSOLE, Console

if TYPE_CHECKING:  # gateway.services -> gateway.settings -> gateway.console: annotations only
    from gateway.services import Services

__all__ = ["ConsoleConfig", "register_console"]


def register_console(app: web.Application, services: Services, config: ConsoleConfig | None = None) -> Console | None:
    """Add the console under ``{admin prefix}/console``; call before the app starts.

    Pages read the stores the app's lifecycle opens (``services.alerts``, ``.approvals``,
    ``.access``), so they answer only once the app has started. Routes resolve most-specific-first,
    so registering after the proxy's catch-all route is fine.
    """
    config = config or ConsoleConfig()
    if not config.enabled:
        return None
    console = Console(app, services, config)
    app[CONSOLE] = console
    r = app.router
    routes.register(console, r)  # login, logout, static files, home
    pages_triage.register(console, r)  # POST .../alerts/bulk, incidents, saved filters
    pages_alerts.register(console, r)
    pages_alert_detail.register(console, r)  # .../alerts/{id} and its actions
    pages_governance.register(console, r)  # .../governance, .../users/{user}/govern
    pages_dashboard.register(console, r)
    pages_audit.register(console, r)  # and pages_replay's API
    pages_blocks.register(console, r)  # POST .../users/{user}/lift
    pages_approvals.register(console, r)  # four-eyes approvals: also open to approvers
    pages_access.register(console, r)  # access requests: managers and approvers too
    routes.register_fallback(console, r)  # anything else: the guard, then 404
    return console
