from __future__ import annotations

import pytest

from ..factories import make_criterion, make_ctx, try_criterion

BOUNDS = "query: {param: page_size, gte: 1, lte: 200}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("200", True),
        ("201", False),
        ("0", False),
        ("-5", False),
        ("abc", False),
        ("1e3", False),
        ("1_000", False),
        (" 50", False),
        (None, False),
    ],
)
def test_bounds(value, expected):
    query = {"page_size": value} if value is not None else {}
    assert make_criterion(BOUNDS).evaluate(make_ctx(query=query)) is expected


@pytest.mark.parametrize(
    ("text", "query", "expected"),
    [
        ("query: {param: page_size, absent: true}", {}, True),
        ("query: {param: page_size, absent: true}", {"page_size": "10"}, False),
        ("query: {param: page_size, absent: false}", {"page_size": "10"}, True),
        ("query: {param: format, in: [csv, json]}", {"format": "csv"}, True),
        ("query: {param: format, in: [csv, json]}", {"format": "xml"}, False),
        ("query: {param: format, in: [csv, json]}", {}, False),
        ("query: {param: format, not_in: [xml]}", {"format": "csv"}, True),
        ("query: {param: format, not_in: [xml]}", {"format": "xml"}, False),
    ],
)
def test_operators(text, query, expected):
    assert make_criterion(text).evaluate(make_ctx(query=query)) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("query: {param: page_size}", "at least one of"),
        ("query: {param: page_size, absent: true, lte: 3}", "cannot be combined"),
        ("query: {param: page_size, gte: 10, lte: 3}", "nothing can match"),
        ("query: {param: page_size, lte: '200'}", "valid integer"),
    ],
)
def test_compile_errors(text, message):
    criterion, errors = try_criterion(text)
    assert criterion is None
    assert message in str(errors[0])
