"""Per-user-day feature rows written by the live scorer as days close (gateway.scoring), read back
as a :class:`detectors.dataset.Dataset` of end-of-day rows.

Every gateway replica writes its own file, ``<scoring.rows_dir>/live-rows-<host>-<pid>.jsonl``; a
user-day is written once across replicas (by the one that stored the day in the shared state).
Each line names its features, so rows written before a feature was added are still readable (the
missing feature is refused, never guessed)::

    {"user": "alice", "role": "sales_rep", "day": "2026-03-04", "time": 1772668799.0,
     "features": {"requests": 2.48, ...}}

These are the rows the live path scored: attack days are in them and in the users' histories as
they happened, so training from them excludes labelled days at training time.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from detectors.features import FEATURE_NAMES


def row_line(user: str, role: str, day: str, time: float, x: list[float]) -> bytes:
    return (
        orjson.dumps({"user": user, "role": role, "day": day, "time": time, "features": dict(zip(FEATURE_NAMES, x))})
        + b"\n"
    )


def read_live_rows(paths: Iterable[str | Path]) -> Any:
    """The rows of these files as a Dataset (all final), sorted by day then user; a line with other
    features raises ValueError naming the file and line."""
    import numpy as np

    from detectors.dataset import Dataset

    rows: list[tuple[str, str, str, float, list[float]]] = []
    for path in paths:
        with open(path, "rb") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    r = orjson.loads(line)
                    x = [float(r["features"][name]) for name in FEATURE_NAMES]
                    rows.append((r["day"], r["user"], r["role"], float(r["time"]), x))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise ValueError(f"{path}:{n}: not a live feature row of these features ({exc})") from None
    rows.sort(key=lambda r: (r[0], r[1]))
    return Dataset(
        np.array([r[4] for r in rows]).reshape(len(rows), len(FEATURE_NAMES)),
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[0] for r in rows],
        np.array([r[3] for r in rows]),
        np.ones(len(rows), dtype=bool),
    )
