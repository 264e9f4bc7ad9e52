"""The detector: per-role rarity baseline, an IsolationForest on top, one calibrated threshold.

score(row) = rarity + isolation. Rarity is the sum of the ``TOP_K`` largest *family* deviations,
a family's deviation being the largest rarity of its features (detectors.baseline: -log10 of the
share of the role's days that reach the value). One export shows on five export features; counted
once, it cannot outvote a new country plus night-time access, which are two independent pieces of
evidence. Isolation is ``IF_WEIGHT`` times how much more isolated the row is than a typical
training day in an IsolationForest fitted on the family deviations (combinations of moderate
deviations that no single feature reveals). Summing only the top few families keeps many slightly
busy features from adding up to an alert, and keeps the score explainable: every alert names the
features that drove it, their value, their baseline, and their share.

Confirmed false positives become per-user *allowances*: a feature value at or below what an analyst
has already accepted for that user contributes nothing, so the same behaviour stops alerting while
anything larger still does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

from detectors.baseline import FloatArray, RoleBaseline
from detectors.features import FAMILIES, FEATURE_NAMES, FEATURES, natural

TOP_K = 3
IF_WEIGHT = 10.0
ALLOWANCE_MARGIN = 0.1  # in feature units: ~10 % above an accepted log-count still passes
PAYLOAD_FORMAT = 1


class DetectorModel:
    def __init__(
        self,
        baseline: RoleBaseline,
        iforest: IsolationForest,
        if_center: float,
        *,
        threshold: float = float("inf"),
        allowances: dict[str, dict[str, float]] | None = None,
        feature_names: tuple[str, ...] = FEATURE_NAMES,
    ):
        self.baseline = baseline
        self.iforest = iforest
        self.if_center = float(if_center)
        self.threshold = float(threshold)
        self.allowances: dict[str, dict[str, float]] = allowances or {}
        self.feature_names = tuple(feature_names)
        self._pos = {n: i for i, n in enumerate(self.feature_names)}

    @classmethod
    def fit(cls, X: FloatArray, roles: list[str], *, seed: int = 0) -> DetectorModel:
        baseline = RoleBaseline(np.array([f.floor for f in FEATURES])).fit(X, roles)
        F = family_max(baseline.rarity(X, roles))
        iforest = IsolationForest(n_estimators=200, max_samples=min(512, len(X)), random_state=seed).fit(F)
        center = float(np.median(-iforest.score_samples(F)))
        return cls(baseline, iforest, center)

    # --- scoring ---------------------------------------------------------------------------
    def deviations(self, X: FloatArray, roles: list[str], users: list[str]) -> FloatArray:
        Z = self.baseline.rarity(X, roles)
        if self.allowances:
            for i, user in enumerate(users):
                allowed = self.allowances.get(user)
                if allowed:
                    for name, value in allowed.items():
                        j = self._pos.get(name)
                        if j is not None and X[i, j] <= value + ALLOWANCE_MARGIN:
                            Z[i, j] = 0.0
        return Z

    def _combine(self, Z: FloatArray) -> tuple[FloatArray, FloatArray]:
        F = family_max(Z)
        rarity = np.sort(F, axis=1)[:, -TOP_K:].sum(axis=1)
        isolation = IF_WEIGHT * (-self.iforest.score_samples(F) - self.if_center)
        return rarity, isolation

    def score(self, X: FloatArray, roles: list[str], users: list[str]) -> FloatArray:
        if len(X) == 0:
            return np.zeros(0)
        rarity, isolation = self._combine(self.deviations(X, roles, users))
        return rarity + isolation

    def explain(self, x: FloatArray, role: str, user: str, top: int = 5) -> dict[str, Any]:
        """Score of one row and the features that drove it, in the analyst's units."""
        X = x.reshape(1, -1)
        Z = self.deviations(X, [role], [user])
        rarity, isolation = self._combine(Z)
        b = self.baseline.index([role], X)[0]  # a closing day is compared with the role's closing days
        z = Z[0]
        drivers = {}  # family -> the feature that carried it
        for j in np.argsort(-z):
            fam = FEATURES[j].family
            if z[j] > 0 and fam not in drivers:
                drivers[fam] = j
        counted = set(list(drivers.values())[:TOP_K])
        shown = (
            list(drivers.values())[:TOP_K]
            + [j for j in np.argsort(-z) if z[j] > 0 and j not in counted][: max(0, top - TOP_K)]
        )
        total = float(rarity[0]) or 1.0
        features = {
            self.feature_names[j]: {
                "value": natural(self.feature_names[j], float(x[j])),
                "baseline": natural(self.feature_names[j], float(self.baseline.medians[b, j])),
                "rarity": round(float(z[j]), 2),  # -log10 of the share of role days this high
                "contribution": round(float(z[j]) / total, 3) if j in counted else 0.0,
            }
            for j in shown
        }
        return {
            "score": round(float(rarity[0] + isolation[0]), 3),
            "rarity": round(float(rarity[0]), 3),
            "isolation": round(float(isolation[0]), 3),
            "threshold": round(self.threshold, 3),
            "baseline_group": self.baseline.roles[b],
            "features": features,
        }

    def allow(self, user: str, x: FloatArray, role: str) -> dict[str, float]:
        """Accept this user's row as benign: its deviating features become allowances."""
        Z = self.baseline.rarity(x.reshape(1, -1), [role])[0]
        accepted = self.allowances.setdefault(user, {})
        for j in np.flatnonzero(Z > 0):
            name = self.feature_names[j]
            accepted[name] = max(accepted.get(name, -np.inf), float(x[j]))
        return accepted

    # --- persistence: only plain containers, numpy arrays and one sklearn estimator -----------
    def to_payload(self) -> dict[str, Any]:
        return {
            "format": PAYLOAD_FORMAT,
            "feature_names": list(self.feature_names),
            "baseline": self.baseline.params(),
            "iforest": self.iforest,
            "if_center": self.if_center,
            "threshold": self.threshold,
            "allowances": {u: dict(a) for u, a in sorted(self.allowances.items())},
        }

    @classmethod
    def from_payload(cls, p: object) -> DetectorModel:
        if not isinstance(p, dict) or p.get("format") != PAYLOAD_FORMAT:
            raise ValueError("not a crmgw detector payload (unknown format)")
        if not isinstance(p.get("iforest"), IsolationForest):
            raise ValueError("payload 'iforest' is not an IsolationForest")
        if tuple(p["feature_names"]) != FEATURE_NAMES:
            raise ValueError("the model was trained on different features than this version computes")
        return cls(
            RoleBaseline.from_params(p["baseline"]),
            p["iforest"],
            p["if_center"],
            threshold=p["threshold"],
            allowances=p.get("allowances") or {},
            feature_names=tuple(p["feature_names"]),
        )


_FAMILY_INDEX = [np.array([j for j, f in enumerate(FEATURES) if f.family == fam]) for fam in FAMILIES]


def family_max(Z: FloatArray) -> FloatArray:
    """(rows, features) deviations -> (rows, families): each family's largest."""
    return np.column_stack([Z[:, idx].max(axis=1) for idx in _FAMILY_INDEX])


def calibrate(day_scores: FloatArray, budget_per_1000: float) -> tuple[float, float]:
    """The lowest threshold whose false alerts on these benign user-days stay within budget.

    Returns (threshold, realised false alerts per 1,000 user-days). A day alerts when its score
    is strictly above the threshold.
    """
    n = len(day_scores)
    if n == 0:
        raise ValueError("no benign user-days to calibrate on")
    allowed = int(np.floor(budget_per_1000 * n / 1000.0 + 1e-9))
    ordered = np.sort(day_scores)[::-1]
    threshold = float(ordered[min(allowed, n - 1)])
    realised = float((day_scores > threshold).sum()) * 1000.0 / n
    return threshold, realised
