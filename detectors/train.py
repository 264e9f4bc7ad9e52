"""``crmgw detector train``: replay audit logs, fit the detector, calibrate it to an alert budget.

The days of the logs are split in time order; before the held-out part, calibration days are
drawn from each day type separately (detectors.calendar: weekdays, weekends, month-ends, ...; every
k-th day of the type, k = 1/calibration, at least one of every type with two days or more), and
each calibration user-day is weighted so that the day types count as often as they do in the
calendar the model will be judged on (the held-out days; with ``--holdout 0``, the whole range):
a month-end weighs as much in the threshold as it will in the false-alert count.

    | train train cal train (month-end: cal train train) train cal ... |------- held out -------|

Labels and verdicts are read only for days before the held-out part, so evaluation
(detectors.evaluate) never benefits from them. Labelled attacks and confirmed-malicious days stay
out of the user histories, the baseline and the calibration; false-positive verdicts are benign
rows and become per-user allowances. The threshold is the lowest score whose false alerts on the
benign calibration user-days (a day alerts if any of its 15-minute snapshots does, as in serving)
stay within the budget.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detectors import dataset, store
from detectors.calendar import day_type
from detectors.features import FEATURE_NAMES, echo_days
from detectors.labels import Label, Verdict, read_jsonl
from detectors.model import IF_WEIGHT, TOP_K, DetectorModel
from detectors.replay import expand_paths
from detectors.rows import load_rows, replay_rows

log = logging.getLogger("crmgw.detectors")


class TrainingError(Exception):
    """Training cannot produce a sound model from these inputs (message says why)."""


def log_day_range(paths: Iterable[str | Path]) -> tuple[date, date]:
    """First and last UTC day in the audit files, from each file's first and last line."""
    days: list[date] = []
    for path in expand_paths(paths):
        with open(path, "rb") as fh:
            head = fh.read(65536).split(b"\n")
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 65536))
            tail = fh.read().split(b"\n")
        for line in head[:-1] + tail[1:]:
            try:
                t = orjson.loads(line)["time"]
                when = datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(UTC)
                days.append(when.date())
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
    if not days:
        raise TrainingError("the audit logs contain no records")
    return min(days), max(days)


def split_days(first: date, last: date, holdout: float, calibration: float) -> tuple[list[str], list[str], str]:
    """(training days, calibration days, holdout_from) as YYYY-MM-DD."""
    if not (0 <= holdout < 1 and 0 < calibration < 1):
        raise TrainingError("--holdout must be in [0, 1) and --calibration in (0, 1)")
    n = (last - first).days + 1
    n_hold = round(n * holdout)
    every = max(2, round(1 / calibration))
    before = [(first + timedelta(days=i)).isoformat() for i in range(n - n_hold)]
    by_type: dict[str, list[str]] = {}
    for d in before:
        by_type.setdefault(day_type(d), []).append(d)
    chosen: set[str] = set()
    for days in by_type.values():
        picked = days[every // 2 :: every] if len(days) >= every else days[len(days) // 2 :][:1]
        chosen.update(picked if len(days) >= 2 else [])
    cal = [d for d in before if d in chosen]
    train = [d for d in before if d not in chosen]
    if len(train) < 7 or not cal:
        raise TrainingError(
            f"{n} days of logs are too few: need at least 7 training days and one "
            f"calibration day besides {n_hold} held-out days"
        )
    return train, cal, (first + timedelta(days=n - n_hold)).isoformat()


def calendar_weights(cal_days: list[str], target_days: list[str]) -> dict[str, float]:
    """Day type -> weight of its calibration user-days, so that each type weighs as much as its
    share of the target calendar (types the target lacks weigh a little, never nothing)."""
    cal = Counter(day_type(d) for d in cal_days)
    target = Counter(day_type(d) for d in target_days)
    n_cal, n_target = sum(cal.values()), max(1, sum(target.values()))
    return {t: max(0.1, (target[t] / n_target) / (c / n_cal)) for t, c in cal.items()}


def calibrate_weighted(scores: np.ndarray, weights: np.ndarray, budget: float) -> tuple[float, float]:
    """The lowest threshold whose weighted false alerts per 1,000 user-days stay within budget.
    Returns (threshold, realised weighted rate). A day alerts when its score is above the threshold."""
    order = np.argsort(-scores)
    s, w = scores[order], weights[order]
    total = float(w.sum())
    cum = np.cumsum(w) * 1000.0 / total  # rate if the threshold sits just below s[i]
    for i in range(len(s)):
        # threshold = s[i]: days 0..i-1 (scores above it, ties aside) alert
        if i + 1 < len(s) and s[i + 1] == s[i]:
            continue
        if cum[i] > budget + 1e-9:
            threshold = float(s[i])
            realised = float(w[s > threshold].sum()) * 1000.0 / total
            return threshold, realised
    return float(s[-1]) - 1e-9, float(cum[-1])


def load_inputs(labels_path: str | Path | None, verdicts_path: str | Path | None) -> tuple[list[Label], list[Verdict]]:
    labels: list[Label] = []
    verdicts: list[Verdict] = []
    errors: list[str] = []
    if labels_path:
        labels, errs = read_jsonl(labels_path, Label)
        errors += errs
    if verdicts_path:
        verdicts, errs = read_jsonl(verdicts_path, Verdict)
        errors += errs
    if errors:
        raise TrainingError("\n".join(errors))
    return labels, verdicts


def day_max(ds: dataset.Dataset, scores: np.ndarray) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for user, day, s in zip(ds.users, ds.days, scores):
        key = (user, day)
        if s > out.get(key, -np.inf):
            out[key] = float(s)
    return out


def plan(
    paths: Collection[str | Path],
    labels_path: str | Path | None,
    verdicts_path: str | Path | None,
    holdout: float,
    calibration: float,
) -> dict[str, Any]:
    """The split and the user-days to keep out of histories, from the logs' day range, the labels
    known before the held-out part and the analysts' verdicts (one function for ``train`` and
    ``replay``, so a rows file is replayed with exactly the exclusions training would use)."""
    labels, verdicts = load_inputs(labels_path, verdicts_path)
    first, last = log_day_range(paths)
    train_days, cal_days, hold_from = split_days(first, last, holdout, calibration)
    known = [x for x in labels if x.day < hold_from]  # never look at held-out labels
    malicious = {(x.user, x.day) for x in known}
    malicious |= {(v.user, v.the_day) for v in verdicts if v.malicious and v.the_day < hold_from}
    benign_verdicts = {(v.user, v.the_day) for v in verdicts if v.benign and v.the_day < hold_from}
    return {
        "first": first,
        "last": last,
        "train_days": train_days,
        "cal_days": cal_days,
        "hold_from": hold_from,
        "malicious": malicious - benign_verdicts,
        "benign_verdicts": benign_verdicts,
        "confirmed": sum(1 for v in verdicts if v.malicious),
    }


def replay(
    paths: Collection[str | Path], p: dict[str, Any], workers: int | None
) -> tuple[dataset.Dataset, dict[str, Any], dict[str, Any]]:
    return replay_rows(paths, exclude=p["malicious"], snapshots_from=p["first"].isoformat(), workers=workers)


def rows_meta(p: dict[str, Any]) -> dict[str, Any]:
    return {"hold_from": p["hold_from"], "first": p["first"].isoformat(), "excluded": sorted(p["malicious"])}


def train(
    paths: Collection[str | Path],  # read twice: once for the day range, once for the replay
    out: Path,
    *,
    labels_path: str | Path | None = None,
    verdicts_path: str | Path | None = None,
    budget: float = 5.0,
    holdout: float = 0.2,
    calibration: float = 0.2,
    seed: int = 0,
    workers: int | None = 1,
    rows_path: Path | None = None,
) -> store.Card:
    """Trains from the audit logs, or from a rows file of ``crmgw detector replay`` (rows_path)
    replayed with the same labels, verdicts and split (refused otherwise)."""
    if budget <= 0:
        raise TrainingError("--budget must be positive (false alerts per 1,000 user-days)")
    p = plan(paths, labels_path, verdicts_path, holdout, calibration)
    first, last, hold_from = p["first"], p["last"], p["hold_from"]
    train_days, cal_days_list = p["train_days"], p["cal_days"]
    malicious, benign_verdicts = p["malicious"], p["benign_verdicts"]
    log.info("replaying %s .. %s (%d calibration days, held out from %s)", first, last, len(cal_days_list), hold_from)
    if rows_path is not None:
        ds, state, meta = load_rows(Path(rows_path))
        wanted = orjson.loads(orjson.dumps(rows_meta(p)))
        if meta.get("replay") != wanted:
            raise TrainingError(f"{rows_path} was replayed with other labels, verdicts or split; replay again")
        records = int(meta.get("records", 0))
    else:
        ds, state, stats = replay(paths, p, workers)
        records = stats["records"]
    started = time.perf_counter()
    days = ds.day_array()
    unclean = malicious | echo_days(malicious)
    clean = np.array([(u, d) not in unclean for u, d in zip(ds.users, ds.days)], dtype=bool)
    not_malicious = np.array([(u, d) not in malicious for u, d in zip(ds.users, ds.days)], dtype=bool)
    train_mask = ds.final & np.isin(days, train_days) & clean
    # echo days stay out of training (their 7-day features carry the incident) but calibrate:
    # the analyst sees the alerts raised on them, and so does the false-alert count
    cal_mask = np.isin(days, cal_days_list) & not_malicious
    if train_mask.sum() < 50:
        raise TrainingError(f"only {int(train_mask.sum())} benign training user-days; need 50")
    tr = ds.subset(train_mask)
    model = DetectorModel.fit(tr.X, tr.roles, seed=seed)
    for i in np.flatnonzero(ds.final & clean):
        if (ds.users[i], ds.days[i]) in benign_verdicts:
            model.allow(ds.users[i], ds.X[i], ds.roles[i])
    cal = ds.subset(cal_mask)
    cal_days = day_max(cal, model.score(cal.X, cal.roles, cal.users))
    if not cal_days:
        raise TrainingError("no calibration user-days (the logs end before the calibration range)")
    n_days = (last - first).days + 1
    everything = [(first + timedelta(days=i)).isoformat() for i in range(n_days)]
    target = [d for d in everything if d >= hold_from] or everything
    weight_of = calendar_weights(cal_days_list, target)
    weights = np.array([weight_of[day_type(d)] for _, d in cal_days])
    model.threshold, realised = calibrate_weighted(np.array(list(cal_days.values())), weights, budget)
    history = state
    history["excluded"] = sorted([u, d] for u, d in malicious)
    card = store.save(
        Path(out),
        model,
        history,
        {
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "features": list(FEATURE_NAMES),
            "training_range": (train_days[0], train_days[-1]),
            "calibration_range": (cal_days_list[0], cal_days_list[-1]),
            "calibration_every": max(2, round(1 / calibration)),
            "holdout_from": hold_from if hold_from <= last.isoformat() else None,
            "rows": {
                "training_user_days": int(train_mask.sum()),
                "calibration_user_days": len(cal_days),
                "calibration_snapshots": int(cal_mask.sum()),
                "excluded_user_days": len(malicious),
                "records": records,
                "fit_milliseconds": round((time.perf_counter() - started) * 1000),
            },
            "budget": budget,
            "calibration_false_alerts_per_1000": round(realised, 3),
            "roles": model.baseline.roles,
            "verdicts": {"false_positive": len(benign_verdicts), "confirmed": p["confirmed"]},
            "model": {"kind": "role-rarity+isolation-forest", "top_k": TOP_K, "if_weight": IF_WEIGHT, "seed": seed},
        },
    )
    return card
