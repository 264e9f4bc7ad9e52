"""Per-role rarity: how rare, among its role's days, each feature value of a user-day is.

Rarity is an empirical tail probability in -log10 units: ``rarity = -log10 P(role day >= x)``,
estimated from the role's training days with add-one smoothing, so 2.0 means "1 day in 100 of this
role reaches this much". Most features are 0 on most days (exports, deletes, new countries), where
a z-score would call any non-zero value extreme; the empirical tail says how often it really
happens. Above the largest value ever seen the tail is extended exponentially with the feature's
feature's declared floor as a Gaussian tail (``0.5 * (distance / floor)^2`` e-folds), so 10x the
role's record is far rarer than just above it instead of saturating at ``log10(n)``. It is
one-sided: less activity than usual is never suspicious. Month-end exports need no special case:
they are part of the role's distribution (a few percent of its days), which is exactly what the
empirical tail measures.

Groups are the roles with enough training days, and within a role its closing days (the last
weekdays of a month or quarter, detectors.calendar) when there are enough of them: a row is
compared with ``role@closing`` on a closing day if that group exists, else with its role, else with
everybody. The day type travels in the feature row's context column (``features.CONTEXT``), which is
never scored itself. The median and robust spread (1.4826*MAD, upper quartile, floor) are kept for
explanations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.calendar import DAY_TYPES
from detectors.features import CONTEXT, FEATURE_NAMES

RARITY_MAX = 15.0
MIN_ROLE_ROWS = 30
GLOBAL = "*"
LOG10_E = math.log10(math.e)
CONTEXT_COLUMN = FEATURE_NAMES.index(CONTEXT)
CLOSING_CODES = (float(DAY_TYPES.index("month_end")), float(DAY_TYPES.index("quarter_end")))

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]


class RoleBaseline:
    def __init__(self, floors: ArrayLike, min_rows: int = MIN_ROLE_ROWS) -> None:
        self.floors = np.asarray(floors, dtype=np.float64)
        self.min_rows = min_rows
        self.roles: list[str] = []  # group names; index 0 is everybody
        self.medians = np.zeros((0, len(self.floors)))
        self.scales = np.zeros((0, len(self.floors)))
        self.sorted: list[FloatArray] = []  # per group: training values, each column sorted
        self.rows: list[int] = []

    def _add(self, name: str, X: FloatArray, meds: list[FloatArray], scales: list[FloatArray]) -> None:
        med = np.median(X, axis=0)
        mad = 1.4826 * np.median(np.abs(X - med), axis=0)
        iqr = (np.quantile(X, 0.75, axis=0) - med) / 0.6745
        self.roles.append(name)
        meds.append(med)
        scales.append(np.maximum.reduce([mad, iqr, self.floors]))
        self.sorted.append(np.sort(X, axis=0))
        self.rows.append(len(X))

    def fit(self, X: FloatArray, groups: list[str]) -> RoleBaseline:
        self.roles, self.sorted, self.rows = [], [], []
        meds: list[FloatArray] = []
        scales: list[FloatArray] = []
        self._add(GLOBAL, X, meds, scales)
        arr = np.asarray(groups)
        closing = _closing(X)
        for group in sorted(set(groups)):
            mask = arr == group
            if mask.sum() >= self.min_rows:
                self._add(group, X[mask], meds, scales)
            if (mask & closing).sum() >= self.min_rows:
                self._add(f"{group}@closing", X[mask & closing], meds, scales)
        self.medians, self.scales = np.array(meds), np.array(scales)
        return self

    def index(self, groups: list[str], X: ArrayLike | None = None) -> IndexArray:
        """Row -> baseline: its role's closing days (given X, on a closing day), else its role's
        own, else everybody's."""
        pos = {r: i for i, r in enumerate(self.roles)}
        closing = _closing(np.asarray(X, dtype=np.float64)) if X is not None else np.zeros(len(groups), dtype=bool)
        return np.array(
            [pos.get(f"{g}@closing", pos.get(g, 0)) if c else pos.get(g, 0) for g, c in zip(groups, closing)],
            dtype=int,
        )

    def rarity(self, X: ArrayLike, groups: list[str]) -> FloatArray:
        """(rows, features) -> -log10 of the tail probability, 0 for ordinary values."""
        X = np.asarray(X, dtype=np.float64)
        idx = self.index(groups, X)
        out = np.zeros_like(X)
        for b in np.unique(idx):
            rows = np.flatnonzero(idx == b)
            ref = self.sorted[b]
            n = len(ref)
            for j in range(X.shape[1]):
                x = X[rows, j]
                ge = n - np.searchsorted(ref[:, j], x, side="left")
                r = -np.log10((ge + 1.0) / (n + 1.0))
                beyond = np.maximum(0.0, x - ref[-1, j]) / self.floors[j]
                out[rows, j] = r + 0.5 * beyond * beyond * LOG10_E
        out[:, CONTEXT_COLUMN] = 0.0  # context, not evidence
        clipped: FloatArray = np.clip(out, 0.0, RARITY_MAX)  # numpy's stubs type clip's result as Any
        return clipped

    def params(self) -> dict[str, Any]:
        return {
            "roles": list(self.roles),
            "medians": self.medians,
            "scales": self.scales,
            "floors": self.floors,
            "rows": list(self.rows),
            "min_rows": self.min_rows,
            "sorted": list(self.sorted),
        }

    @classmethod
    def from_params(cls, p: Mapping[str, Any]) -> RoleBaseline:
        b = cls(np.asarray(p["floors"]), int(p["min_rows"]))
        b.roles, b.rows = list(p["roles"]), list(p["rows"])
        b.medians, b.scales = np.asarray(p["medians"]), np.asarray(p["scales"])
        b.sorted = [np.asarray(s) for s in p["sorted"]]
        if not (len(b.roles) == len(b.rows) == len(b.sorted) == len(b.medians) == len(b.scales)):
            raise ValueError("baseline parameters are inconsistent")
        return b


def _closing(X: FloatArray) -> NDArray[np.bool_]:
    if X.ndim != 2 or X.shape[1] <= CONTEXT_COLUMN:
        return np.zeros(len(X), dtype=bool)
    return np.isin(X[:, CONTEXT_COLUMN], CLOSING_CODES)
