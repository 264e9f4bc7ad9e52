"""Jinja filters of the console: times in the analyst's time zone, compact numbers, level order.

Templates are rendered with autoescape on; nothing here returns Markup built from user data
(``pretty`` returns plain text that the template escapes).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

import jinja2
import orjson

from gateway.audit.search import parse_time
from gateway.console.session import Viewer


def _zone(ctx: jinja2.runtime.Context) -> tzinfo:
    viewer: Viewer | None = ctx.get("viewer")
    return viewer.tz if viewer is not None else UTC


@jinja2.pass_context
def localtime(ctx: jinja2.runtime.Context, value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An ISO time (or epoch seconds) in the analyst's zone, with the zone's abbreviation."""
    if value is None or value == "":
        return "-"
    if isinstance(value, (int, float)):
        when: datetime | None = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, datetime):
        when = value
    else:
        when = parse_time(value)
    if when is None:
        return str(value)
    local = when.astimezone(_zone(ctx))
    return f"{local.strftime(fmt)} {local.tzname()}"


def isotime(value: Any) -> str:
    """Machine-readable form for ``<time datetime=...>``."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC).isoformat()
    return str(value or "")


def pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str).decode()
    except TypeError:
        return str(value)


def number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.3g}"
    return str(value)


def setup_filters(env: jinja2.Environment) -> None:
    env.filters.update(localtime=localtime, isotime=isotime, pretty=pretty, number=number)
    env.globals.update(LEVELS=("critical", "high", "medium", "low"))
