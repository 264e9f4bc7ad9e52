"""``crmgw detector evaluate``: how the model does on days it was neither trained nor calibrated on.

The audit logs are replayed from the start (so user histories are as the live scorer would have
them) but only user-days from the model card's ``holdout_from`` on are scored and counted. History
exclusions are the ones the model was trained with (labels known before the held-out part); attacks
inside the held-out part are not excluded — nobody knew about them yet.

Metrics:
- false_alerts_per_1000_user_days: benign active user-days (no label) whose score ever went over
  the threshold, per 1,000 benign active user-days, counted over EVERY benign user-day: the
  analyst sees the alerts raised on the 6 "echo" days after an incident too;
- false_alerts_per_1000_without_echo: the same without those echo days (the figure reported
  before; kept for comparison);
- false_alerts_by_day_type: the same count per kind of day (detectors.calendar: weekday,
  weekend, month_end, quarter_end, month_start, holiday; new_user, after_role_change; echo);
- pr_auc: average precision of the day score (max over the day's snapshots) over all user-days;
- recall: incidents (per scenario and overall) with a snapshot over the threshold at or after the
  incident started, on one of its labelled days;
- recall_by_difficulty: the same per difficulty level of the simulator's labels (standard for
  the basic scenarios; easy/medium/hard for the attacks that look like work);
- median_delay: minutes from the incident's start to that first alerting snapshot (snapshots are
  taken per 15-minute slot of activity; the live scorer adds its batch interval).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import Any, TypedDict

import numpy as np
from sklearn.metrics import average_precision_score

from detectors import store
from detectors.calendar import user_day_kinds
from detectors.features import echo_days
from detectors.labels import Label, read_jsonl
from detectors.rows import replay_rows


class EvaluationError(Exception):
    pass


class _Outcomes(TypedDict):
    """One scenario's incidents: whether each was detected, and the delays of those that were."""

    hit: list[bool]
    delay: list[float]  # minutes


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def evaluate(
    model_dir: Path,
    paths: Iterable[str | Path],
    labels_path: str | Path,
    *,
    all_days: bool = False,
    workers: int | None = 1,
) -> dict[str, Any]:
    loaded = store.load(Path(model_dir))
    model, card = loaded.model, loaded.card
    labels, errors = read_jsonl(labels_path, Label)
    if errors:
        raise EvaluationError("\n".join(errors))
    start = None if all_days else card.holdout_from
    if not all_days and start is None:
        raise EvaluationError(
            "the model was trained without a held-out part (--holdout 0); evaluate it on other logs with --all-days"
        )
    exclude = {(u, d) for u, d in loaded.history.get("excluded", []) if start is None or d < start}
    ds, _, _ = replay_rows(paths, exclude=exclude, snapshots_from=start or "0000", workers=workers)
    kinds = user_day_kinds([(u, d, r) for u, d, r in zip(ds.users, ds.days, ds.roles)], min(ds.days, default="0000"))
    if start is not None:
        ds = ds.subset(ds.day_array() >= start)
    if len(ds) == 0:
        raise EvaluationError(f"no user-days to evaluate from {start} on in these logs")
    scores = model.score(ds.X, ds.roles, ds.users)
    threshold = model.threshold
    day_score: dict[tuple[str, str], float] = {}
    alert_times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for user, day, t, s in zip(ds.users, ds.days, ds.times, scores):
        key = (user, day)
        day_score[key] = max(day_score.get(key, -np.inf), float(s))
        if s > threshold:
            alert_times[key].append(float(t))
    labelled = {(x.user, x.day): x for x in labels}
    echo = echo_days(labelled)
    benign_all = [k for k in day_score if k not in labelled]
    benign = [k for k in benign_all if k not in echo]
    false_alerts = sum(1 for k in benign if day_score[k] > threshold)
    false_alerts_all = sum(1 for k in benign_all if day_score[k] > threshold)
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind -> [user-days, false alerts]
    for k in benign_all:
        for kind in kinds.get(k, []) + (["echo"] if k in echo else []):
            by_kind[kind][0] += 1
            by_kind[kind][1] += day_score[k] > threshold
    keys = [k for k in day_score if k not in echo]
    y = np.array([k in labelled for k in keys])
    pr_auc = float(average_precision_score(y, [day_score[k] for k in keys])) if y.any() else None

    incidents: dict[str, list[Label]] = defaultdict(list)
    for x in labels:
        incidents[x.incident_id].append(x)
    per: dict[str, _Outcomes] = defaultdict(lambda: {"hit": [], "delay": []})
    per_level: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for parts in incidents.values():
        first = min(parts, key=lambda x: x.start)
        if start is not None and first.day < start:
            continue  # began before the held-out part: not an unseen incident
        if not any((x.user, x.day) in day_score for x in parts):
            continue  # its days are not in these logs
        t0 = _epoch(first.start)
        times = [t for x in parts for t in alert_times.get((x.user, x.day), ()) if t >= t0]
        per[first.scenario]["hit"].append(bool(times))
        per_level[(first.scenario, first.difficulty or "standard")].append(bool(times))
        if times:
            per[first.scenario]["delay"].append((min(times) - t0) / 60.0)
    all_hits = [h for v in per.values() for h in v["hit"]]
    levels: dict[str, list[bool]] = defaultdict(list)
    for (_, level), hits in per_level.items():
        levels[level] += hits
    return {
        "recall": round(float(np.mean(all_hits)), 4) if all_hits else None,
        "pr_auc": round(pr_auc, 4) if pr_auc is not None else None,
        "false_alerts_per_1000_user_days": _per_1000(false_alerts_all, len(benign_all)),
        "false_alerts_per_1000_without_echo": _per_1000(false_alerts, len(benign)),
        "false_alerts_by_day_type": {
            kind: {"user_days": n, "false_alerts": fa, "per_1000": _per_1000(fa, n)}
            for kind, (n, fa) in sorted(by_kind.items())
        },
        "recall_by_difficulty": {level: _recall(hits) for level, hits in sorted(levels.items())},
        "per_scenario": {
            name: {
                "recall": round(float(np.mean(v["hit"])), 4),
                "median_delay": round(median(v["delay"]), 1) if v["delay"] else None,
                "incidents": len(v["hit"]),
                "detected": int(sum(v["hit"])),
                "by_difficulty": {lv: _recall(h) for (sc, lv), h in sorted(per_level.items()) if sc == name},
            }
            for name, v in sorted(per.items())
        },
        "delay_unit": "minutes",
        "threshold": round(threshold, 4),
        "budget": card.budget,
        "evaluated_from": start or min(ds.days),
        "evaluated_to": max(ds.days),
        "benign_user_days": len(benign_all),
        "echo_user_days": len(benign_all) - len(benign),
        "false_alerts": false_alerts_all,
        "false_alerts_without_echo": false_alerts,
        "labelled_user_days": int(y.sum()),
        "incidents": len(all_hits),
    }


def _per_1000(n: int, of: int) -> float:
    return round(n * 1000.0 / max(1, of), 3)


def _recall(hits: list[bool]) -> dict[str, Any]:
    return {"recall": round(float(np.mean(hits)), 4), "incidents": len(hits), "detected": int(sum(hits))}
