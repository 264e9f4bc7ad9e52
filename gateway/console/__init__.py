"""The security console: analysts triage alerts, admins look at rules and decisions, in a browser.

    config.py        ConsoleConfig: the ``console:`` settings section (roles, session secret, ...)
    session.py       token cookie, identity via the gateway's identity stage, CSRF, Origin check
    routes.py        register_console: the role guard, security headers, login/logout, static files
    pages_alerts.py  alert queue, alert detail (why, chart, requests behind it), analyst actions
    pages_audit.py   decisions search and detail, one user's view, rules + explain; a small JSON API
    pages_blocks.py  blocks / step-ups in force (queue, user, alert) and lifting them (lift_roles)
    activity.py      per-day activity, usual range/hours/countries, shadow counts (pure functions)
    chart.py         inline SVG bar charts rendered on the server
    filters.py       filter-form parsing (times in the analyst's time zone)
    templating.py    Jinja filters (autoescape is on everywhere)
    templates/ static/   the pages, console.css and console.js (served by the gateway; no CDN)

Pages live under ``{admin prefix}/console/`` (default ``/_gw/console/``).
"""

from __future__ import annotations

from gateway.console.config import ConsoleConfig
from gateway.console.routes import register_console

__all__ = ["ConsoleConfig", "register_console"]
