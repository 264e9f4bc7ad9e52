"""Analyst verdicts, exported for the next training run.

The detector (detectors/, which imports nothing from gateway/) reads a JSON-lines FILE; this is the
contract. One line per closed alert, its latest verdict::

    {"user": "alice", "type": "bulk-export", "window": "1d", "day": "2026-03-03",
     "verdict": "false_positive" | "confirmed", "time": "<when the analyst decided, ISO UTC>",
     "alert_id": "...", "level": "high", "score": 0.93, "source": "threshold", "rule": "...",
     "evidence": {...}}

``false_positive``: benign (the detector should stop alerting on this behaviour for this user);
``confirmed``: the alert was real (resolved) — keep that user-day out of the baselines.
``day`` is the evidence's ``day`` when it carries one (YYYY-MM-DD, the user's local day as the
signals/detector computed it), otherwise the UTC date the alert was raised. Open and acknowledged
alerts carry no verdict and are not exported.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson

from gateway.alerts.journal import Journal, latest_alerts

VERDICTS = {"false_positive": "false_positive", "resolved": "confirmed"}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def verdict_of(alert: dict[str, Any]) -> dict[str, Any] | None:
    verdict = VERDICTS.get(str(alert.get("status")))
    if verdict is None:
        return None
    evidence = alert.get("evidence") or {}
    day = evidence.get("day") if isinstance(evidence.get("day"), str) and _DAY.match(evidence["day"]) else None
    decided = next(
        (h.get("time") for h in reversed(alert.get("history") or []) if h.get("to") == alert.get("status")),
        alert.get("updated_at"),
    )
    return {
        "user": alert["user"],
        "type": alert["type"],
        "window": alert.get("window", ""),
        "day": day or str(alert["time"])[:10],
        "verdict": verdict,
        "time": decided,
        "alert_id": alert["id"],
        "level": alert.get("level"),
        "score": alert.get("score"),
        "source": alert.get("source"),
        "rule": alert.get("rule"),
        "evidence": evidence,
    }


def read_verdicts(journal_path: Path) -> list[dict[str, Any]]:
    """Verdicts from one journal file (the newest copy of each alert), oldest alert first."""
    records = Journal(Path(journal_path)).read_new()
    alerts = latest_alerts(records)
    out = [verdict_of(a) for _, a in sorted(alerts.items())]
    return [v for v in out if v is not None]


def write_verdicts(journal_path: Path, out_path: Path, verdicts: list[dict[str, Any]] | None = None) -> int:
    """Write the verdicts file atomically (temp file + rename); returns the number of lines."""
    rows = read_verdicts(journal_path) if verdicts is None else verdicts
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "wb") as f:
        for row in rows:
            f.write(orjson.dumps(row) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out_path)
    return len(rows)
