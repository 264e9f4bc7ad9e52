"""Hypothesis profiles for the property tests.

The default profile keeps CI fast. The bounded fuzz run (README):

    .venv/bin/python -m pytest tests/property -q --hypothesis-profile=fuzz

raises every property test to thousands of examples with no deadline. Profiles must be registered
before pytest loads them, so run the fuzz profile with ``tests/property`` on the command line (this
conftest is then read first).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def fuzzing() -> bool:
    return settings.get_current_profile_name() == "fuzz"


def examples(ci: int, fuzz: int) -> int:
    """``ci`` examples normally, ``fuzz`` under the fuzz profile (for tests that are slow per example)."""
    return fuzz if fuzzing() else ci


def pytest_collection_modifyitems(config, items):
    """Under the fuzz profile a test may run for minutes: lift the suite's 60 s per-test timeout."""
    if fuzzing():
        for item in items:
            if item.path.is_relative_to(config.rootpath / "tests" / "property"):
                item.add_marker(pytest.mark.timeout(1800))
