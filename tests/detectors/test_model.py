"""The model: rarity against the role, calibration to a budget, allowances from verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.features import FEATURE_NAMES
from detectors.model import DetectorModel, calibrate

EXPORTED = FEATURE_NAMES.index("records_exported")


def fitted(seed=0) -> DetectorModel:
    rng = np.random.default_rng(seed)
    X = np.abs(rng.normal(0, 0.3, size=(400, len(FEATURE_NAMES))))
    X[:, 0] = rng.normal(3.5, 0.3, 400)  # ~30 requests a day
    X[::50, EXPORTED] = np.log1p(100)  # 2 % of days export 100 rows
    model = DetectorModel.fit(X, ["sales_rep"] * 400, seed=seed)
    model.threshold = 6.0
    return model


def row(**values) -> np.ndarray:
    x = np.zeros(len(FEATURE_NAMES))
    x[0] = 3.5
    for name, v in values.items():
        x[FEATURE_NAMES.index(name)] = v
    return x


def test_a_value_far_beyond_the_roles_record_scores_higher_than_a_seen_one():
    m = fitted()
    seen, huge = row(records_exported=np.log1p(100)), row(records_exported=np.log1p(5000))
    s = m.score(np.array([seen, huge]), ["sales_rep"] * 2, ["u", "u"])
    assert s[1] > s[0] + 5


def test_explanation_names_the_driving_feature_with_value_baseline_and_share():
    m = fitted()
    e = m.explain(row(records_exported=np.log1p(5000)), "sales_rep", "u")
    top = next(iter(e["features"].items()))
    assert top[0] in ("records_exported",)
    assert top[1]["value"] == 5000 and top[1]["baseline"] < 1  # the role median
    assert 0 < top[1]["contribution"] <= 1


def test_an_unknown_role_is_compared_with_everybody():
    m = fitted()
    x = np.array([row(records_exported=np.log1p(5000))])
    assert m.score(x, ["astronaut"], ["u"])[0] == pytest.approx(m.score(x, ["sales_rep"], ["u"])[0])


def test_an_accepted_false_positive_stops_the_same_behaviour_alerting():
    m = fitted()
    x = row(records_exported=np.log1p(5000))
    before = m.score(np.array([x]), ["sales_rep"], ["u"])[0]
    m.allow("u", x, "sales_rep")
    after = m.score(np.array([x, x]), ["sales_rep"] * 2, ["u", "other"])
    assert after[0] < before and after[1] == pytest.approx(before)
    bigger = row(records_exported=np.log1p(50000))
    assert m.score(np.array([bigger]), ["sales_rep"], ["u"])[0] > after[0] + 5


@pytest.mark.parametrize("budget", [1.0, 5.0, 20.0])
def test_calibration_keeps_false_alerts_within_the_budget(budget):
    scores = np.random.default_rng(1).gamma(2.0, 2.0, size=3000)
    threshold, realised = calibrate(scores, budget)
    assert (scores > threshold).sum() * 1000 / len(scores) == realised <= budget
    assert (scores > np.nextafter(threshold, -np.inf)).sum() * 1000 / len(scores) > budget - 1e-9


def test_calibration_needs_days():
    with pytest.raises(ValueError):
        calibrate(np.array([]), 5.0)
