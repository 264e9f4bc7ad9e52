"""The audit line's time is formatted from a per-second cache (gateway.audit.events.iso_millis):
character for character what ``datetime.isoformat(timespec="milliseconds")`` gives, rounding included."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from gateway.audit.events import iso_millis

EDGES = [0.0005, 0.9995, 0.0009995, 0.9999995, 0.9999996, 0.0000005, 0.0000015, 0.1234565, 0.0, 0.999]


def reference(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def test_random_and_rounding_edge_timestamps_format_like_datetime():
    rng = random.Random(14)
    stamps = [rng.uniform(0, 4e9) for _ in range(20000)]
    stamps += [rng.randrange(0, 4 * 10**9) + edge for _ in range(2000) for edge in EDGES]
    stamps += [1765150000 + i / 1000 for i in range(3000)]  # consecutive milliseconds over seconds
    mismatches = [ts for ts in stamps if iso_millis(ts) != reference(ts)]
    assert mismatches == []


def test_the_cache_follows_the_clock_back_and_forth():
    for ts in (1765150001.5, 1765150000.25, 1765150001.75, 86400.0, 1765150000.9999996):
        assert iso_millis(ts) == reference(ts)


@pytest.mark.parametrize("ts", [float("nan"), float("inf")])
def test_what_datetime_refuses_is_refused(ts):
    with pytest.raises((ValueError, OverflowError)):
        iso_millis(ts)
