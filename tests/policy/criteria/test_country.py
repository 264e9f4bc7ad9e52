from __future__ import annotations

import pytest

from ..factories import make_criterion, make_ctx, try_criterion


@pytest.mark.parametrize(
    ("text", "country", "expected"),
    [
        ("country: {in: [KP, IR]}", "KP", True),
        ("country: {in: [KP, IR]}", "FR", False),
        ("country: {in: [KP, IR]}", None, None),
        ("country: {not_in: [KP, IR]}", "FR", True),
        ("country: {not_in: [KP, IR]}", "IR", False),
        ("country: {not_in: [KP, IR]}", None, None),
        ("country: {in: [KP]}", "kp", True),
    ],
)
def test_truth_table(text, country, expected):
    assert make_criterion(text).evaluate(make_ctx(country=country)) is expected


def test_list_reference():
    criterion = make_criterion("country: {in: $denied}", lists={"denied": ["RU"]})
    assert criterion.evaluate(make_ctx(country="RU")) is True


@pytest.mark.parametrize(("value", "hint"), [("fr", "upper-case ISO"), ("NO", "booleans"), ("FRA", "alpha-2")])
def test_bad_codes(value, hint):
    criterion, errors = try_criterion(f"country: {{in: [{value}]}}")
    assert criterion is None
    assert hint in str(errors[0])
