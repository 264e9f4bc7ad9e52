from __future__ import annotations

from datetime import datetime

import pytest

from ..factories import make_criterion, make_ctx, make_identity, try_criterion

PARIS_OFFICE = "time_window: {timezone: Europe/Paris, days: [mon, tue, wed, thu, fri], from: '08:00', to: '18:00'}"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-24T10:00:00+01:00", True),  # Tuesday
        ("2026-11-24T08:00:00+01:00", True),  # from is inclusive
        ("2026-11-24T07:59:00+01:00", False),
        ("2026-11-24T17:59:00+01:00", True),
        ("2026-11-24T18:00:00+01:00", False),  # to is exclusive
        ("2026-11-28T10:00:00+01:00", False),  # Saturday
        ("2026-11-24T09:00:00+00:00", True),  # 10:00 in Paris
        ("2026-11-24T17:30:00+00:00", False),  # 18:30 in Paris
        ("2026-11-24T02:00:00-08:00", True),  # 11:00 in Paris
    ],
)
def test_office_hours(now, expected):
    assert make_criterion(PARIS_OFFICE).evaluate(make_ctx(now=now)) is expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # 16:30Z is 17:30 in Paris on the Friday before the change (UTC+1) ...
        ("2026-03-27T16:30:00+00:00", True),
        # ... and 18:30 on the Monday after it (UTC+2, since Sunday 29 March 2026)
        ("2026-03-30T16:30:00+00:00", False),
        ("2026-03-30T15:59:00+00:00", True),  # 17:59 in Paris
        ("2026-03-30T06:00:00+00:00", True),  # 08:00 in Paris
        ("2026-03-30T05:59:00+00:00", False),  # 07:59 in Paris, 06:59 by the winter clock
        # and back on Monday 26 October 2026 (UTC+1 again)
        ("2026-10-26T16:59:00+00:00", True),  # 17:59
        ("2026-10-26T17:30:00+00:00", False),  # 18:30
    ],
)
def test_follows_daylight_saving(utc, expected):
    assert make_criterion(PARIS_OFFICE).evaluate(make_ctx(now=utc)) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-27T23:00:00+01:00", True),  # Friday night
        ("2026-11-28T05:59:00+01:00", True),  # Saturday early: the window that started Friday
        ("2026-11-28T06:00:00+01:00", False),
        ("2026-11-28T23:00:00+01:00", False),  # Saturday night: no window starts on Saturday
        ("2026-11-27T12:00:00+01:00", False),
        ("2026-11-23T03:00:00+01:00", False),  # Monday early: Sunday is not listed
    ],
)
def test_overnight_window_belongs_to_the_day_it_starts(now, expected):
    text = "time_window: {timezone: Europe/Paris, days: [fri], from: '22:00', to: '06:00'}"
    assert make_criterion(text).evaluate(make_ctx(now=now)) is expected


@pytest.mark.parametrize(("user", "expected"), [("alice", False), ("bob", True)])
def test_user_timezone(user, expected):
    # 03:00 UTC on a Tuesday: 04:00 in Paris (alice), 11:00 in Shanghai (bob)
    text = "time_window: {timezone: user, from: '08:00', to: '18:00'}"
    assert make_criterion(text).evaluate(make_ctx(user=user, now="2026-11-24T03:00:00+00:00")) is expected


@pytest.mark.parametrize("timezone", [None, "Mars/Olympus"])
def test_user_without_usable_timezone_is_unknown(timezone):
    identity = make_identity("alice", timezone=timezone)
    assert make_criterion("time_window: {timezone: user}").evaluate(make_ctx(user=identity)) is None


def test_naive_time_is_unknown():
    assert make_criterion(PARIS_OFFICE).evaluate(make_ctx(now=datetime(2026, 11, 24, 10))) is None


def test_defaults_cover_the_whole_day():
    criterion = make_criterion("time_window: {timezone: UTC}")
    assert criterion.evaluate(make_ctx(now="2026-11-29T23:59:00+00:00")) is True
    assert criterion.evaluate(make_ctx(now="2026-11-29T00:00:00+00:00")) is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time_window: {timezone: Europe/Pariss}", "unknown time zone 'Europe/Pariss'"),
        ("time_window: {timezone: UTC, from: '8:00'}", 'time must be "HH:MM"'),
        ("time_window: {timezone: UTC, to: '25:00'}", 'time must be "HH:MM"'),
        ("time_window: {timezone: UTC, to: 18:00}", "write times in quotes"),
        ("time_window: {timezone: UTC, from: '09:00', to: '09:00'}", "empty window"),
        ("time_window: {timezone: UTC, days: [monday]}", "days.0"),
        ("time_window: {timezone: UTC, days: []}", "at least 1 item"),
        ("time_window: {days: [mon]}", "timezone: Field required"),
    ],
)
def test_compile_errors(text, message):
    criterion, errors = try_criterion(text)
    assert criterion is None
    assert any(message in str(e) for e in errors), [str(e) for e in errors]
