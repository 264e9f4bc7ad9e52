"""Analyst verdicts, exported for the next training run.

The detector (detectors/, which imports nothing from gateway/) reads a JSON-lines FILE; this is the
contract. One line per closed alert and window, its latest verdict::

    {"user": "alice", "type": "bulk-export", "window": "1d", "day": "2026-03-03",
     "verdict": "false_positive" | "confirmed", "time": "<when the analyst decided, ISO UTC>",
     "alert_id": "...", "level": "high", "score": 0.93, "source": "threshold", "rule": "...",
     "evidence": {...}, "classification": "true_positive" | "benign_true_positive" | "false_positive",
     "determination": "compromised_account" | ... | null, "analyst": "<who decided>"}

``false_positive``: benign (the detector should stop alerting on this behaviour for this user);
``confirmed``: the alert was real (resolved) — keep that user-day out of the baselines.
``day`` is the evidence's ``day`` when it carries one (YYYY-MM-DD, the user's local day as the
signals/detector computed it), otherwise the UTC date the alert was raised. Open and acknowledged
alerts carry no verdict and are not exported. An alert that later windows joined (``recurred``:
gateway/alerts/intake.py) gives one more line per joined window, with that window, its day (the
evidence kept for it, else the window when it is a day) and its evidence: the analyst's verdict
covers every day of the case, so training learns from each of them.

``verdict`` keeps its two values (the detector's contract): a benign true positive is a real
alert (``confirmed``: the status is resolved); ``classification`` and ``determination`` add the
analyst's finer verdict (gateway.alerts.model.classification: alerts closed before verdicts existed
read as true_positive / false_positive by their status).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson

from gateway.alerts.journal import Journal, latest_alerts
from gateway.alerts.model import classification

VERDICTS = {"false_positive": "false_positive", "resolved": "confirmed"}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def verdict_of(alert: dict[str, Any]) -> dict[str, Any] | None:
    verdict = VERDICTS.get(str(alert.get("status")))
    if verdict is None:
        return None
    evidence = alert.get("evidence") or {}
    day = evidence.get("day") if isinstance(evidence.get("day"), str) and _DAY.match(evidence["day"]) else None
    closing = next((h for h in reversed(alert.get("history") or []) if h.get("to") == alert.get("status")), None)
    decided = closing.get("time") if closing else alert.get("updated_at")
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
        "classification": classification(alert),
        "determination": alert.get("determination"),
        "analyst": closing.get("actor") if closing else None,
    }


def verdicts_of(alert: dict[str, Any]) -> list[dict[str, Any]]:
    """The lines of one alert: its own (``verdict_of``), then one per window that joined it."""
    first = verdict_of(alert)
    if first is None:
        return []
    out = [first]
    occurrences = [o for o in alert.get("occurrences") or () if isinstance(o, dict)]
    for window in alert.get("windows") or ():
        kept = next((o for o in reversed(occurrences) if o.get("window") == window), None)
        evidence = (kept or {}).get("evidence") or {}
        day = next((d for d in (evidence.get("day"), window) if isinstance(d, str) and _DAY.match(d)), None)
        out.append(
            {
                **first,
                "window": window,
                "day": day or str((kept or {}).get("time") or alert["time"])[:10],
                "score": (kept or {}).get("score", first["score"]),
                "level": (kept or {}).get("level", first["level"]),
                "evidence": evidence,
            }
        )
    return out


def read_verdicts(journal_path: Path) -> list[dict[str, Any]]:
    """Verdicts from one journal file (the newest copy of each alert), oldest alert first."""
    records = Journal(Path(journal_path)).read_new()
    alerts = latest_alerts(records)
    return [v for _, a in sorted(alerts.items()) for v in verdicts_of(a)]


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
