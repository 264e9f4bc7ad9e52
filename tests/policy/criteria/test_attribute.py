from __future__ import annotations

import pytest

from ..factories import make_criterion, make_ctx, make_identity, try_criterion


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        ("attribute: {name: team, in: [east]}", "alice", True),
        ("attribute: {name: team, in: [east]}", "carol", False),
        ("attribute: {name: region, not_in: [apac]}", "bob", False),
        ("attribute: {name: region, not_in: [apac]}", "alice", True),
        ("attribute: {name: cost_center, in: [x]}", "alice", None),  # attribute missing
    ],
)
def test_in_not_in(text, user, expected):
    assert make_criterion(text).evaluate(make_ctx(user=user)) is expected


def test_equals_identity():
    criterion = make_criterion("attribute: {name: home_region, equals_identity: region}")
    same = make_identity("alice", attributes={"home_region": "emea"})
    other = make_identity("alice", attributes={"home_region": "apac"})
    assert criterion.evaluate(make_ctx(user=same)) is True
    assert criterion.evaluate(make_ctx(user=other)) is False
    assert criterion.evaluate(make_ctx(user="alice")) is None


def test_needs_exactly_one_operator():
    criterion, errors = try_criterion("attribute: {name: team, in: [a], equals_identity: region}")
    assert criterion is None
    assert "exactly one of" in str(errors[0])
