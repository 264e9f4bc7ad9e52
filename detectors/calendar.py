"""Day types: the calendar a user-day falls on, for baselines, calibration and the evaluation.

A month-end export or a quiet holiday is ordinary for that kind of day and unusual on any other, so
the baseline compares a day with the days of the same type (detectors.baseline), the calibration
days are drawn from every type the held-out days will have (detectors.train), and the evaluation
counts false alerts per type (detectors.evaluate).

Types, most specific first (a day has exactly one): ``holiday`` (a public holiday at one of the
sites, :data:`HOLIDAYS`: a UTC day is shared by every site, so this is coarse), ``weekend``, ``quarter_end`` and
``month_end`` (the last three weekdays of a quarter's or a month's last month), ``month_start``
(its first two weekdays, when late reports still come in), ``weekday``.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

DAY_TYPES = ("weekday", "weekend", "month_end", "quarter_end", "month_start", "holiday")
# Public holidays of the simulator's site countries (2026): a site goes quiet, the others do not.
HOLIDAYS_BY_COUNTRY = {
    "FR": frozenset({"2026-01-01", "2026-04-06", "2026-05-01", "2026-05-14", "2026-07-14", "2026-11-11", "2026-12-25"}),
    "CN": frozenset({"2026-01-01", "2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19", "2026-05-01", "2026-10-01"}),
    "US": frozenset({"2026-01-01", "2026-01-19", "2026-02-16", "2026-05-25", "2026-07-03", "2026-11-26", "2026-12-25"}),
}
HOLIDAYS = frozenset().union(*HOLIDAYS_BY_COUNTRY.values())


def weekdays_left_in_month(d: date) -> int:
    left, probe = 0, d + timedelta(days=1)
    while probe.month == d.month:
        left += probe.weekday() < 5
        probe += timedelta(days=1)
    return left


def weekdays_before_in_month(d: date) -> int:
    return sum(1 for k in range(1, d.day) if date(d.year, d.month, k).weekday() < 5)


@lru_cache(maxsize=4096)
def day_type(day: str) -> str:
    """The type of a UTC day ``YYYY-MM-DD`` (see the module docstring)."""
    d = date.fromisoformat(day)
    if day in HOLIDAYS:
        return "holiday"
    if d.weekday() >= 5:
        return "weekend"
    if weekdays_left_in_month(d) < 3:
        return "quarter_end" if d.month % 3 == 0 else "month_end"
    if weekdays_before_in_month(d) < 2:
        return "month_start"
    return "weekday"


def is_holiday(d: date, country: str) -> bool:
    return d.isoformat() in HOLIDAYS_BY_COUNTRY.get(country, frozenset())


def day_type_code(day: str) -> float:
    """The day type as a number, for the feature vector's context column."""
    return float(DAY_TYPES.index(day_type(day)))


def day_type_of_code(code: float) -> str:
    i = round(code)
    return DAY_TYPES[i] if 0 <= i < len(DAY_TYPES) else "weekday"


NEW_USER_DAYS = 7  # a new user's first active days: no history of their own yet
AFTER_ROLE_CHANGE_DAYS = 7


def user_day_kinds(rows: list[tuple[str, str, str]], log_first_day: str) -> dict[tuple[str, str], list[str]]:
    """(user, day, role) of every active user-day -> the kinds each user-day counts under in the
    false-alert breakdown: its calendar type, plus ``new_user`` (one of the first active days of
    a user who appears after the logs begin) and ``after_role_change`` (within a week of the
    user's roles changing)."""
    out: dict[tuple[str, str], list[str]] = {}
    first_seen: dict[str, date] = {}
    last_role: dict[str, str] = {}
    changed: dict[str, date] = {}
    start = date.fromisoformat(log_first_day)
    for user, day, role in sorted(set(rows), key=lambda r: (r[1], r[0])):
        d = date.fromisoformat(day)
        kinds = [day_type(day)]
        first = first_seen.setdefault(user, d)
        if first > start + timedelta(days=3) and (d - first).days < NEW_USER_DAYS:
            kinds.append("new_user")
        if user in last_role and last_role[user] != role:
            changed[user] = d
        if user in changed and (d - changed[user]).days < AFTER_ROLE_CHANGE_DAYS:
            kinds.append("after_role_change")
        last_role[user] = role
        out[(user, day)] = kinds
    return out
