"""Named features of one user-day window, in a fixed order, from the aggregator's state.

Every feature grows with suspicion (more records, more novelty, faster travel), so the baseline
only needs to look at the upper tail. Counts are log-scaled (``log1p``): the difference between 5
and 50 exported rows matters as much as between 500 and 5,000. Features relative to the user's own
history are log-ratios to the maximum or median of the user's previous days and are 0 (neutral)
until the user has ``MIN_HISTORY`` days, so late joiners are judged by their role alone.

All counters inside a day only grow, so a window's features never go down during the day: the
score at the end of a day is (for the baseline) the highest the day ever reached.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection
from datetime import date, timedelta
from functools import lru_cache

from detectors.calendar import day_type_code
from detectors.replay import History, Window, totals

MIN_HISTORY = 3


@dataclasses.dataclass(frozen=True)
class Feature:
    name: str
    family: str  # features that measure the same behaviour; the model counts a family once
    scale: str  # "log1p" | "count" | "log10" | "logratio": how the raw value was transformed
    floor: float  # smallest spread the baseline assumes (a feature that is always 0 has MAD 0)
    description: str


def _f(name: str, family: str, scale: str, floor: float, description: str) -> Feature:
    return Feature(name, family, scale, floor, description)


FEATURES: tuple[Feature, ...] = (
    _f("requests", "volume", "log1p", 0.35, "requests"),
    _f("records_read", "volume", "log1p", 0.5, "records read (lists and views)"),
    _f("records_exported", "export", "log1p", 0.7, "records exported"),
    _f("records_deleted", "delete", "log1p", 0.7, "records deleted"),
    _f("distinct_records", "volume", "log1p", 0.5, "distinct records touched"),
    _f("exports", "export", "log1p", 0.5, "export calls"),
    _f("deletes", "delete", "log1p", 0.5, "delete calls"),
    _f("denials", "denials", "log1p", 0.5, "denied requests"),
    _f("max_hour_requests", "volume", "log1p", 0.35, "requests in the busiest hour"),
    _f("max_hour_records_read", "volume", "log1p", 0.5, "records read in the busiest hour"),
    _f("max_hour_records_exported", "export", "log1p", 0.7, "records exported in the busiest hour"),
    _f("max_hour_records_deleted", "delete", "log1p", 0.7, "records deleted in the busiest hour"),
    _f("sequential_views", "sequence", "log1p", 0.5, "views of the next record id"),
    _f("longest_sequential_run", "sequence", "log1p", 0.5, "longest walk through consecutive ids"),
    _f("off_hours_requests", "hours", "log1p", 0.5, "requests outside working hours"),
    _f("night_requests", "hours", "log1p", 0.5, "requests between 00:00 and 06:00 local time"),
    _f("new_countries", "country", "count", 0.5, "countries never seen for this user"),
    _f("new_networks", "network", "count", 0.5, "networks never seen for this user"),
    _f("new_user_agents", "network", "count", 0.5, "user agents never seen for this user"),
    _f("new_country_requests", "country", "log1p", 0.5, "requests from a new country few peers use"),
    _f("new_country_off_hours", "country_off_hours", "log1p", 0.5, "off-hours requests from such a country"),
    _f("max_travel_speed", "travel", "log10", 0.5, "fastest implied travel between countries, km/h"),
    _f("impossible_travel", "travel", "count", 0.5, "country changes faster than an airliner"),
    _f("exported_7d", "export_week", "log1p", 0.7, "records exported in the last 7 days*"),
    _f("export_days_7d", "export_week", "count", 0.5, "days with exports in the last 7 days*"),
    _f("requests_vs_user_max", "volume", "logratio", 0.3, "requests vs the user's busiest day"),
    _f("records_read_vs_user_max", "volume", "logratio", 0.4, "records read vs the user's highest day"),
    _f("records_exported_vs_user_max", "export", "logratio", 0.7, "exported vs the user's highest day"),
    _f("records_deleted_vs_user_max", "delete", "logratio", 0.7, "deleted vs the user's highest day"),
    _f("distinct_records_vs_user_max", "volume", "logratio", 0.4, "distinct records vs the user's highest day"),
    _f("requests_vs_user_median", "volume", "logratio", 0.3, "requests vs the user's typical day"),
    _f("distinct_records_vs_user_median", "volume", "logratio", 0.4, "distinct records vs a typical day"),
    _f("unfamiliar_records", "familiarity", "log1p", 0.5, "records the user never touched before"),
    _f("unfamiliar_vs_user_median", "familiarity", "logratio", 0.4, "never-touched records read vs a typical day"),
    # context, not evidence: the baseline compares a day with days of the same type and never
    # scores this column (detectors.baseline)
    _f("day_type", "context", "context", 1.0, "type of day (detectors.calendar.DAY_TYPES)"),
)
CONTEXT = "day_type"
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME = {f.name: f for f in FEATURES}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(f.family for f in FEATURES))


def natural(name: str, value: float) -> float:
    """A feature value back in the units an analyst reads (rows, requests, km/h, ratio)."""
    scale = BY_NAME[name].scale
    if scale == "log1p":
        return round(math.expm1(value), 2)
    if scale == "log10":
        return round(10**value - 1, 1)
    if scale == "logratio":
        return round(math.exp(value), 2)  # "x times the user's usual"
    return round(value, 2)


def echo_days(user_days: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
    """The 6 days after each given user-day, when its exports still show in the 7-day features.

    An incident's echo is neither a new incident nor a benign day: training, calibration and the
    false-alert count leave these days out.
    """
    out: set[tuple[str, str]] = set()
    for user, day in user_days:
        d = date.fromisoformat(day)
        out.update((user, (d + timedelta(days=k)).isoformat()) for k in range(1, 7))
    return out - set(user_days)


def _lg(x: float) -> float:
    return math.log1p(max(0.0, x))


def compute(w: Window, hist: History, exported_by_day: dict[str, int] | None) -> list[float]:
    """The feature row of a window; the live scorer calls exactly this (no other context needed:
    the day type comes from ``w.day``, familiarity from ``hist``)."""
    c = w.counts
    today = totals(w)
    hours = w.hours.values()
    mx = [max((h[i] for h in hours), default=0) for i in range(4)]
    regular_today = 0 if is_month_end(w.day) else today["records_exported"]
    # the week's exports count on a day the user exports again: the days after one big export
    # (its "echo") are not a new export, a sixth small export in a week is
    week = _week_exports(w.day, exported_by_day or {}) + regular_today if regular_today else 0
    week_days = _week_export_days(w.day, exported_by_day or {}) + 1 if regular_today else 0
    rel = _relative(today, hist, closing=is_month_end(w.day))
    usual = _usual(today, hist, settled=hist.settled_in(w.assignment, w.day))
    return [
        _lg(c.get("requests", 0)),
        _lg(c.get("records_read", 0)),
        _lg(c.get("records_exported", 0)),
        _lg(c.get("records_deleted", 0)),
        _lg(today["distinct_records"]),
        _lg(c.get("exports", 0)),
        _lg(c.get("deletes", 0)),
        _lg(c.get("denials", 0)),
        _lg(mx[0]),
        _lg(mx[1]),
        _lg(mx[2]),
        _lg(mx[3]),
        _lg(w.sequential),
        _lg(w.longest),
        _lg(c.get("off_hours", 0)),
        _lg(w.night),
        float(len(w.new_countries)),
        float(len(w.new_networks)),
        float(len(w.new_agents)),
        _lg(w.new_country_requests),
        _lg(w.new_country_off_hours),
        math.log10(1.0 + w.max_speed),
        float(w.impossible),
        _lg(week),
        float(week_days),
        *rel,
        _lg(w.unfamiliar),
        *usual,
        day_type_code(w.day),
    ]


def _relative(today: dict[str, int], hist: History, closing: bool = False) -> list[float]:
    if len(hist.days) < MIN_HISTORY:
        return [0.0] * 7
    s = hist.summary()

    def vs(metric: str, which: int) -> float:
        return _lg(today[metric]) - _lg(s[metric][which])

    return [
        vs("requests", 0),
        vs("records_read", 0),
        # a closing day's export is judged against the role's closing days (detectors.baseline),
        # not against the user's last weeks: a first month-end export is not a user anomaly
        0.0 if closing else vs("records_exported", 0),
        vs("records_deleted", 0),
        vs("distinct_records", 0),
        vs("requests", 1),
        vs("distinct_records", 1),
    ]


def _usual(today: dict[str, int], hist: History, settled: bool) -> list[float]:
    """Records read that the user never touched before, against the user's typical day: every
    record is new to a support agent, almost none to a settled sales rep (whose stolen session
    reads other people's records at the owner's pace and hours). In the first week of a new role
    or team (new territory: new records) they are expected, and count 0."""
    if len(hist.days) < MIN_HISTORY or not settled:
        return [0.0]
    return [_lg(today["unfamiliar_read"]) - _lg(hist.summary()["unfamiliar_read"][1])]


@lru_cache(maxsize=1024)
def is_month_end(day: str) -> bool:
    """The last three weekdays of a month: closing, reporting and exports are normal then."""
    d = date.fromisoformat(day)
    left, probe = 0, d + timedelta(days=1)
    while probe.month == d.month:
        left += probe.weekday() < 5
        probe += timedelta(days=1)
    return d.weekday() < 5 and left < 3


@lru_cache(maxsize=1024)
def _previous_days(day: str, n: int = 6) -> tuple[str, ...]:
    """The n days before ``day`` that are not month-end days (*: the 7-day export features
    leave month-end out, else every closing period would look like a week-long export)."""
    d = date.fromisoformat(day)
    days = ((d - timedelta(days=i)).isoformat() for i in range(1, n + 1))
    return tuple(x for x in days if not is_month_end(x))


def _week_exports(day: str, by_day: dict[str, int]) -> int:
    return sum(by_day.get(d, 0) for d in _previous_days(day)) if by_day else 0


def _week_export_days(day: str, by_day: dict[str, int]) -> int:
    return sum(1 for d in _previous_days(day) if by_day.get(d, 0) > 0) if by_day else 0


assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES))
