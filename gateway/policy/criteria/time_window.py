"""``time_window: {timezone: Europe/Paris, days: [mon, fri], from: "08:00", to: "18:00"}``.

The request time (``ctx.now``, timezone-aware) is converted with zoneinfo to the named IANA zone,
so the window follows daylight saving changes. ``timezone: user`` uses the caller's own zone from
the directory; a user without one (or with a zone the system does not know) is a missing fact.

``from`` is inclusive, ``to`` exclusive (``"24:00"`` is the end of the day). ``from`` later than
``to`` is an overnight window; its ``days`` name the day it *starts*: ``fri 22:00-06:00`` covers
Saturday 02:00.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, field_validator

from gateway.model import RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria.base import CompileEnv, Criterion, Fact, Outcome
from gateway.rulefile import StrictModel

HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def minutes(text: str) -> int:
    hours, mins = text.split(":")
    return int(hours) * 60 + int(mins)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo | None:
    """A zone by name, None when unknown; cached because ``timezone: user`` looks it up per request."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None


class TimeWindowArgs(StrictModel):
    model_config = ConfigDict(populate_by_name=True)  # ``from_`` too, like Membership

    timezone: str = Field(min_length=1)
    days: list[Day] = Field(default_factory=lambda: list(DAYS), min_length=1)
    from_: str = Field(default="00:00", alias="from")
    to: str = "24:00"

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _hhmm(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 18:00 as the base-60 integer 1080.
            raise ValueError('write times in quotes, e.g. "18:00"')
        if not isinstance(value, str) or not HHMM.match(value):
            raise ValueError(f'time must be "HH:MM" (00:00 to 24:00), got {value!r}')
        return value


@register
class TimeWindowCriterion(Criterion):
    name = "time_window"
    ok, fail, unknown = "time-window-ok", "time-window-outside", "time-window-unknown"
    specificity = 3

    def __init__(self, tz: ZoneInfo | None, days: frozenset[int], start: int, end: int):
        self.tz = tz  # None: the caller's own zone
        self.days = days  # 0 = Monday, as datetime.weekday()
        self.start, self.end = start, end

    @classmethod
    def compile(cls, raw: Any, env: CompileEnv) -> Criterion | None:
        args = env.parse(raw, TimeWindowArgs)
        if args is None:
            return None
        tz = None
        if args.timezone != "user":
            tz = zone(args.timezone)
            if tz is None:
                hint = "use an IANA name like Europe/Paris, or 'user'"
                env.error(f"unknown time zone {args.timezone!r} ({hint})", "timezone")
                return None
        start, end = minutes(args.from_), minutes(args.to)
        if start == 1440:
            env.error("'from' cannot be 24:00 (the window would start at the end of the day)", "from")
            return None
        if start == end:
            env.error("empty window: 'from' equals 'to'", "to")
            return None
        return cls(tz, frozenset(DAYS.index(d) for d in args.days), start, end)

    def local(self, ctx: RequestContext) -> datetime | None:
        tz = self.tz
        if tz is None:
            name = ctx.identity.user.timezone if ctx.identity is not None else None
            tz = zone(name) if name else None
            if tz is None:
                return None
        now = ctx.now
        if now.tzinfo is None or now.utcoffset() is None:
            return None  # a naive time cannot be placed in a zone: missing fact
        return now.astimezone(tz)

    def facts(self) -> tuple[Fact, ...]:
        # Windows are whole minutes of a local day: the local weekday and minute are all that is
        # read of the time (the time quantised to the boundaries any window can name), in this
        # zone, or with the user's zone named too (its local time is read in it).
        if self.tz is None:
            return (("time@user", self._user_minute),)
        return ((f"time@{self.tz.key}", self._local_minute),)

    def _local_minute(self, ctx: RequestContext) -> tuple[int, int] | None:
        local = self.local(ctx)
        return None if local is None else (local.weekday(), local.hour * 60 + local.minute)

    def _user_minute(self, ctx: RequestContext) -> tuple[str | None, tuple[int, int] | None]:
        return (ctx.identity.user.timezone if ctx.identity is not None else None, self._local_minute(ctx))

    def evaluate(self, ctx: RequestContext) -> Outcome:
        local = self.local(ctx)
        if local is None:
            return None
        day, minute = local.weekday(), local.hour * 60 + local.minute
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        # Overnight: the evening part belongs to today, the early part to the day before.
        return (day in self.days and minute >= self.start) or ((day - 1) % 7 in self.days and minute < self.end)
