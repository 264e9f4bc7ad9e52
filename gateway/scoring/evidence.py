"""What a ``detector-anomaly`` alert tells the analyst: the features that drove the score, each
against the user's own baseline and the peer baseline.

    own    the user's closed days (the final feature rows the live path stored as days closed,
           gateway.scoring.userview): median and highest value, and over how many days; None when
           the user has fewer than MIN_HISTORY days (a new user: only the peers speak)
    peer   the model's baseline group for the row (the role, or the role's closing days on a
           month/quarter end, or everybody for a role with too few days) and its median

Values are in the analyst's units (detectors.features.natural: rows, requests, km/h, ratios).
"""

from __future__ import annotations

from statistics import median
from typing import TYPE_CHECKING, Any

from detectors.features import BY_NAME, FEATURE_NAMES, MIN_HISTORY, natural

if TYPE_CHECKING:
    from detectors.baseline import FloatArray
    from detectors.replay import Window
    from detectors.store import LoadedModel
    from gateway.scoring.userview import UserView

ALERT_TYPE = "detector-anomaly"


def level_for(score: float, threshold: float) -> str:
    if score >= 2.0 * threshold:
        return "critical"
    if score >= 1.4 * threshold:
        return "high"
    return "medium"


def own_baseline(rows: dict[str, list[float]], name: str, before: str) -> dict[str, Any] | None:
    j = FEATURE_NAMES.index(name)
    values = [r[j] for d, r in sorted(rows.items()) if d < before and len(r) == len(FEATURE_NAMES)]
    if len(values) < MIN_HISTORY:
        return None
    return {"usual": natural(name, median(values)), "max": natural(name, max(values)), "days": len(values)}


def driver_text(name: str, f: dict[str, Any]) -> str:
    own = f.get("own")
    mine = f"own usual {own['usual']:g}, max {own['max']:g} over {own['days']} days" if own else "no own history"
    peer = f["peer"]
    return f"{BY_NAME[name].description} {f['value']:g} ({mine}; {peer['group']} usual {peer['usual']:g})"


def summary_for(user: str, day: str, features: dict[str, dict[str, Any]]) -> str:
    parts = [driver_text(n, f) for n, f in list(features.items())[:3] if f["contribution"] > 0]
    return f"{user} on {day}: {'; '.join(parts) or 'an unusual combination of activity'}"


def finding(loaded: LoadedModel, view: UserView, window: Window, x: FloatArray, score: float) -> dict[str, Any]:
    """The ``raise_alert`` arguments for one user-day over the threshold."""
    card, threshold, user = loaded.card, loaded.model.threshold, view.user
    explanation = loaded.model.explain(x, window.role, user)
    group = explanation["baseline_group"]
    features: dict[str, dict[str, Any]] = {}
    for name, f in explanation["features"].items():
        features[name] = {
            **f,
            "own": own_baseline(view.rows, name, window.day),
            "peer": {"group": group, "usual": f["baseline"]},
        }
    evidence = {
        "day": window.day,
        "features": features,
        "drivers": [driver_text(n, f) for n, f in features.items() if f["contribution"] > 0],
        "score": round(score, 3),
        "threshold": round(threshold, 3),
        "rarity": explanation["rarity"],
        "isolation": explanation["isolation"],
        "baseline_group": group,
        "own_history_days": sum(1 for d in view.rows if d < window.day),
        "counters": dict(sorted(window.counts.items())),
        "recent_requests": list(view.recent),
        "model": {"trained_at": card.trained_at, "sha256": card.sha256[:16], "budget": card.budget},
    }
    return {
        "user": user,
        "type": ALERT_TYPE,
        "level": level_for(score, threshold),
        "score": round(score, 3),
        "summary": summary_for(user, window.day, features),
        "evidence": evidence,
        "rule": "detector",
        "window": window.day,
        "source": "detector",
    }
