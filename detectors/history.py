"""What is remembered about a user across days: daily totals, places, agents, the records touched
(a Bloom filter) and the role and team since when (detectors.replay closes windows into it)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import date
from statistics import median

HISTORY_METRICS = (
    "requests",
    "records_read",
    "records_exported",
    "records_deleted",
    "distinct_records",
    "unfamiliar_read",  # records viewed never touched before (a settled user's are few, a thief's many)
)
ROLE_SETTLING_DAYS = 7  # a new role's first week brings new territory: new records are expected
SEEN_BITS = 1 << 15  # per-user Bloom filter of records touched: 4 KiB, ~1 % false "familiar" at 2,000 records


class History:
    """What is remembered about a user across days (closed windows only)."""

    __slots__ = ("agents", "countries", "days", "networks", "role", "role_day", "seen", "stats")

    def __init__(self) -> None:
        self.days: dict[str, dict[str, int]] = {}  # day -> totals of HISTORY_METRICS
        self.countries: set[str] = set()
        self.networks: set[str] = set()
        self.agents: set[str] = set()
        self.stats: dict[str, tuple[float, float]] | None = None  # metric -> (max, median)
        self.role, self.role_day = "", ""  # role|team of the last closed day, and since when
        # records the user has touched on earlier days, as a Bloom filter (two bits per record):
        # a stolen session reads other people's records at the owner's usual pace and hours.
        # Never emptied: a record seen months ago is still familiar.
        self.seen = bytearray(SEEN_BITS // 8)

    def settled_in(self, assignment: str, day: str) -> bool:
        """The user has had this role and team for a week: new records are no longer expected."""
        if assignment != self.role or not self.role_day:
            return False
        return (date.fromisoformat(day) - date.fromisoformat(self.role_day)).days >= ROLE_SETTLING_DAYS

    def remember(self, keys: Iterable[str]) -> None:
        seen = self.seen
        for key in keys:
            for bit in _bits(key):
                seen[bit >> 3] |= 1 << (bit & 7)

    def unfamiliar(self, keys: Iterable[str]) -> int:
        """How many of these records the user has (almost surely) never touched before."""
        seen = self.seen
        return sum(1 for key in keys if not all(seen[b >> 3] & (1 << (b & 7)) for b in _bits(key)))

    def summary(self) -> dict[str, tuple[float, float]]:
        if self.stats is None:
            days = list(self.days.values())
            self.stats = {
                # .get: days stored before a metric existed count 0 for it
                m: (max(d.get(m, 0) for d in days), median(d.get(m, 0) for d in days)) if days else (0.0, 0.0)
                for m in HISTORY_METRICS
            }
        return self.stats


def _bits(key: str) -> tuple[int, int]:
    h = zlib.crc32(key.encode())  # stable across processes, unlike hash()
    return h % SEEN_BITS, (h >> 15 ^ h * 0x9E37) % SEEN_BITS
