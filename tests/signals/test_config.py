"""The signals settings section: strict, with fail modes looked up operation > action > default."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.signals import SignalsConfig


@pytest.mark.parametrize(
    "operation, mode",
    [
        ("customers.export", "closed"),  # the action
        ("customers.delete", "open"),  # the operation wins over the action
        ("contacts.delete", "closed"),
        ("customers.view", "open"),  # default
        (None, "open"),
    ],
)
def test_fail_mode_lookup(operation, mode):
    config = SignalsConfig(fail_mode={"export": "closed", "delete": "closed", "customers.delete": "open"})
    assert config.fail_mode_for(operation) == mode


def test_default_fail_modes_close_exports_and_deletes():
    config = SignalsConfig()
    assert [config.fail_mode_for(op) for op in ("customers.export", "deals.delete", "deals.view")] == [
        "closed",
        "closed",
        "open",
    ]


def test_a_closed_default_closes_everything_not_listed():
    assert SignalsConfig(fail_mode={"default": "closed"}).fail_mode_for("deals.view") == "closed"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"fail_mode": {"exports": "closed"}}, "fail_mode key 'exports'"),
        ({"fail_mode": {"export": "shut"}}, "'open' or 'closed'"),
        ({"backend": "postgres"}, "'redis' or 'memory'"),
        ({"redis": "redis://x"}, "Extra inputs are not permitted"),
        ({"history_days": 3}, "greater than or equal to 7"),
    ],
)
def test_bad_settings_are_refused(data, message):
    with pytest.raises(ValidationError, match=message):
        SignalsConfig.model_validate(data)
