"""A user's risk score: a decaying sum of their alerts, explained alert by alert.

    contribution = level weight x score factor x verdict factor x 0.5 ** (age / half_life)

level weight   low 1, medium 3, high 7, critical 15 (a critical alert outweighs a few lows)
score factor   the alert's score, clamped to [0.5, 2] (a detector's 0.93 and a threshold's 1.5
               stay comparable; an alert never counts less than half its level)
verdict        open / acknowledged 1; true positive 1.5 (confirmed real); benign true positive
               0.25 (real but allowed); false positive 0 (it never counts)
age            since the alert was last seen; ``half_life`` 7 days by default

The score is the sum, rounded to one decimal; the explanation lists each alert's weight so an
analyst can see why a user ranks where they do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta

from gateway.alerts.model import Alert, classification, parse_time

LEVEL_WEIGHT = {"low": 1.0, "medium": 3.0, "high": 7.0, "critical": 15.0}
VERDICT_FACTOR = {None: 1.0, "true_positive": 1.5, "benign_true_positive": 0.25, "false_positive": 0.0}
HALF_LIFE = timedelta(days=7)


@dataclasses.dataclass(frozen=True)
class Contribution:
    alert: Alert
    level_weight: float
    score_factor: float
    verdict_factor: float
    decay: float

    @property
    def weight(self) -> float:
        return self.level_weight * self.score_factor * self.verdict_factor * self.decay


@dataclasses.dataclass
class UserRisk:
    user: str
    contributions: list[Contribution]

    @property
    def score(self) -> float:
        return round(sum(c.weight for c in self.contributions), 1)


def contribution(alert: Alert, now: datetime, half_life: timedelta = HALF_LIFE) -> Contribution:
    seen = parse_time(alert.last_seen or alert.time)
    age = max((now - seen).total_seconds(), 0.0)
    return Contribution(
        alert=alert,
        level_weight=LEVEL_WEIGHT.get(alert.level, 1.0),
        score_factor=min(max(alert.score, 0.5), 2.0),
        verdict_factor=VERDICT_FACTOR.get(classification(alert), 1.0),
        decay=0.5 ** (age / half_life.total_seconds()),
    )


def user_risks(alerts: Iterable[Alert], now: datetime, half_life: timedelta = HALF_LIFE) -> dict[str, UserRisk]:
    """Every user's risk, from their alerts; contributions heaviest first."""
    out: dict[str, UserRisk] = {}
    for a in alerts:
        out.setdefault(a.user, UserRisk(a.user, [])).contributions.append(contribution(a, now, half_life))
    for risk in out.values():
        risk.contributions.sort(key=lambda c: -c.weight)
    return out


def riskiest(risks: dict[str, UserRisk], n: int = 10) -> list[UserRisk]:
    return sorted((r for r in risks.values() if r.score > 0), key=lambda r: (-r.score, r.user))[:n]
