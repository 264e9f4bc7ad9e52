"""``crmgw detector train``: replay audit logs, fit the detector, calibrate it to an alert budget.

The days of the logs are split in time order; before the held-out part, every k-th day
(k = 1/calibration) is a calibration day, so calibration sees the same calendar (month-ends,
weekends) as training:

    | train train train train cal train train train train cal ... |------- held out -------|

Labels and verdicts are read only for days before the held-out part, so evaluation
(detectors.evaluate) never benefits from them. Labelled attacks and confirmed-malicious days stay
out of the user histories, the baseline and the calibration; false-positive verdicts are benign
rows and become per-user allowances. The threshold is the lowest score whose false alerts on the
benign calibration user-days (a day alerts if any of its 15-minute snapshots does, as in serving)
stay within the budget.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson

from detectors import dataset, store
from detectors.features import FEATURE_NAMES, echo_days
from detectors.labels import Label, Verdict, read_jsonl
from detectors.model import IF_WEIGHT, TOP_K, DetectorModel, calibrate
from detectors.replay import expand_paths

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
    cal = [d for i, d in enumerate(before) if i % every == every - 1]
    train = [d for d in before if d not in set(cal)]
    if len(train) < 7 or not cal:
        raise TrainingError(
            f"{n} days of logs are too few: need at least 7 training days and one "
            f"calibration day besides {n_hold} held-out days"
        )
    return train, cal, (first + timedelta(days=n - n_hold)).isoformat()


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
) -> store.Card:
    if budget <= 0:
        raise TrainingError("--budget must be positive (false alerts per 1,000 user-days)")
    labels, verdicts = load_inputs(labels_path, verdicts_path)
    first, last = log_day_range(paths)
    train_days, cal_days_list, hold_from = split_days(first, last, holdout, calibration)
    known = [x for x in labels if x.day < hold_from]  # never look at held-out labels
    malicious = {(x.user, x.day) for x in known}
    malicious |= {(v.user, v.the_day) for v in verdicts if v.malicious and v.the_day < hold_from}
    benign_verdicts = {(v.user, v.the_day) for v in verdicts if v.benign and v.the_day < hold_from}
    malicious -= benign_verdicts
    log.info("replaying %s .. %s (%d calibration days, held out from %s)", first, last, len(cal_days_list), hold_from)
    ds, agg = dataset.build(paths, exclude=malicious, snapshots_from=first.isoformat())
    days = ds.day_array()
    unclean = malicious | echo_days(malicious)
    clean = np.array([(u, d) not in unclean for u, d in zip(ds.users, ds.days)], dtype=bool)
    train_mask = ds.final & np.isin(days, train_days) & clean
    cal_mask = np.isin(days, cal_days_list) & clean
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
    model.threshold, realised = calibrate(np.array(list(cal_days.values())), budget)
    history = agg.state()
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
                "records": agg.records,
            },
            "budget": budget,
            "calibration_false_alerts_per_1000": round(realised, 3),
            "roles": model.baseline.roles,
            "verdicts": {"false_positive": len(benign_verdicts), "confirmed": sum(1 for v in verdicts if v.malicious)},
            "model": {"kind": "role-rarity+isolation-forest", "top_k": TOP_K, "if_weight": IF_WEIGHT, "seed": seed},
        },
    )
    return card
