"""Shared fixtures: the real demo CRM and the real gateway, on real sockets (pytest-aiohttp)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
PARIS = ZoneInfo("Europe/Paris")


class MutableClock:
    """The gateway's clock in tests: set it to any instant, timezone-aware."""

    def __init__(self, now: datetime):
        self.now = now

    def set(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> MutableClock:
    # Tuesday 3 March 2026, 10:00 in Paris: office hours for the shipped rules.
    return MutableClock(datetime(2026, 3, 3, 10, 0, tzinfo=PARIS))


@pytest.fixture
def rules_copy(tmp_path) -> Path:
    """A private copy of the shipped rules, for tests that edit rule files."""
    dest = tmp_path / "rules"
    shutil.copytree(RULES, dest)
    return dest
