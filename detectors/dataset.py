"""Feature rows from recorded audit logs: one replay through the aggregator.

Training uses one row per closed user-day (the end-of-day snapshot). Calibration and evaluation
also keep the intermediate snapshots (one per active 15-minute slot, what the live scorer sees as
the day goes on) so an alert's time, and so detection delay, can be measured; a day alerts if any
of its snapshots does.
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from detectors.features import FEATURE_NAMES, compute
from detectors.peers import Peers
from detectors.replay import Aggregator, History, Window, read_audit_logs


@dataclasses.dataclass
class Dataset:
    X: np.ndarray  # (rows, features)
    users: list[str]
    roles: list[str]
    days: list[str]
    times: np.ndarray  # epoch seconds of the last record the snapshot includes
    final: np.ndarray  # True for the end-of-day snapshot

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, mask: np.ndarray) -> Dataset:
        idx = np.flatnonzero(mask)
        return Dataset(
            self.X[idx],
            [self.users[i] for i in idx],
            [self.roles[i] for i in idx],
            [self.days[i] for i in idx],
            self.times[idx],
            self.final[idx],
        )

    @classmethod
    def concat(cls, parts: list[Dataset]) -> Dataset:
        return cls(
            np.concatenate([p.X for p in parts]) if parts else np.zeros((0, len(FEATURE_NAMES))),
            [u for p in parts for u in p.users],
            [r for p in parts for r in p.roles],
            [d for p in parts for d in p.days],
            np.concatenate([p.times for p in parts]) if parts else np.zeros(0),
            np.concatenate([p.final for p in parts]) if parts else np.zeros(0, dtype=bool),
        )

    def day_array(self) -> np.ndarray:
        return np.array(self.days, dtype="U10")


class _Collector:
    def __init__(self, agg: Aggregator, snapshots_from: str | None):
        self.agg, self.snapshots_from = agg, snapshots_from
        self.values = array("d")
        self.users: list[str] = []
        self.roles: list[str] = []
        self.days: list[str] = []
        self.times = array("d")
        self.final = array("b")

    def __call__(self, user: str, w: Window, hist: History, final: bool) -> None:
        if not final and (self.snapshots_from is None or w.day < self.snapshots_from):
            return
        self.values.extend(compute(w, hist, self.agg.exported_by_day.get(user)))
        self.users.append(user)
        self.roles.append(w.role)
        self.days.append(w.day)
        self.times.append(w.last or 0.0)
        self.final.append(final)

    def dataset(self) -> Dataset:
        X = np.frombuffer(self.values, dtype=np.float64).reshape(-1, len(FEATURE_NAMES)).copy()
        return Dataset(
            X,
            self.users,
            self.roles,
            self.days,
            np.frombuffer(self.times).copy(),
            np.frombuffer(self.final, dtype=np.int8).astype(bool),
        )


def build(
    paths: Iterable[str | Path],
    *,
    exclude: Iterable[tuple[str, str]] = (),
    snapshots_from: str | None = None,
    slot_seconds: int = 900,
    keep: Callable[[bytes], bool] | None = None,
    peers: Peers | None = None,
) -> tuple[Dataset, Aggregator]:
    """Replays the audit logs; returns the feature rows and the aggregator's final state.
    ``keep`` selects raw lines (one worker's users, detectors.rows); ``peers``, every user's
    countries when the lines are one worker's share (detectors.rows)."""
    agg = Aggregator(exclude=exclude, slot_seconds=slot_seconds, peers=peers)
    collector = _Collector(agg, snapshots_from)
    agg.listener = collector
    for record in read_audit_logs(paths, keep):
        agg.add(record)
    agg.close_all()
    return collector.dataset(), agg
