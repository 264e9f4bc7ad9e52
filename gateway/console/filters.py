"""Parsing the console's filter forms: bounded text, and times in the analyst's own time zone.

Browsers send ``<input type="datetime-local">`` values without an offset (``2026-03-03T10:00``);
they mean the analyst's time zone (the directory user's ``timezone``). A value with an offset is
taken as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

MAX_TEXT = 200


class FilterError(ValueError):
    """A filter value the page cannot use; shown to the analyst next to the form."""


def text_param(query: Mapping[str, str], name: str) -> str | None:
    value = (query.get(name) or "").strip()
    if len(value) > MAX_TEXT:
        raise FilterError(f"{name} is longer than {MAX_TEXT} characters")
    return value or None


def local_datetime(value: str | None, tz: ZoneInfo, name: str) -> datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"{name}: not a date and time ({value[:40]!r})") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=tz)


def to_local_input(when: datetime | None, tz: ZoneInfo) -> str:
    """The value to put back into a datetime-local input."""
    return when.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if when else ""
