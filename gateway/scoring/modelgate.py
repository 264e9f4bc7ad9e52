"""Whether a model may serve here: signed for this deployment, and quiet on this deployment's traffic.

:func:`admit` runs in a worker thread before a model replaces the one in use (at start and at every
hot reload): detectors.store.load verifies the signed card (key: detectors.signing), the hashes, the
types and the versions; then :func:`local_alert_rate` replays the last ``check_days`` of this
gateway's own audit log (with the model's history, as the live path starts) and scores every
user-day. A model that would alert far above its budget here — the demo model, or one trained on
another CRM — is refused (``over_budget: refuse``, the default) or served and flagged in health
(``flag``). Too little local traffic to judge is reported as ``unchecked``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from detectors import store
from detectors.events import parse_time
from detectors.features import compute
from detectors.replay import Aggregator, History, Window, read_audit_logs
from detectors.signing import ModelKey


@dataclasses.dataclass
class TrafficCheck:
    status: str  # "ok" | "over-budget" | "unchecked"
    user_days: int = 0
    alerts: int = 0
    per_1000: float | None = None
    limit: float | None = None
    since: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class OverBudget(store.ModelRefused):
    status = "refused"


def audit_files(audit_path: Path | None) -> list[Path]:
    """The audit log and its rotated backups (audit.log, audit.log.1, ...)."""
    if audit_path is None or not audit_path.parent.is_dir():
        return []
    return sorted(p for p in audit_path.parent.iterdir() if p.name.startswith(audit_path.name) and p.is_file())


def local_alert_rate(
    loaded: store.LoadedModel, files: list[Path], *, now: datetime, days: int, factor: float, min_user_days: int
) -> TrafficCheck:
    import numpy as np

    since = now - timedelta(days=days)
    rows: list[list[float]] = []
    roles: list[str] = []
    users: list[str] = []

    def closed(user: str, w: Window, hist: History, final: bool) -> None:
        if final:
            rows.append(compute(w, hist, agg.exported_by_day.get(user)))
            roles.append(w.role)
            users.append(user)

    agg = Aggregator(listener=closed)
    agg.load_state(loaded.history)
    for record in read_audit_logs(files):
        try:
            if parse_time(record["time"]).astimezone(UTC) >= since:
                agg.add(record)
        except (ValueError, TypeError, KeyError):
            continue
    agg.close_all()
    card = loaded.card
    limit = round(card.budget * factor, 3)
    check = TrafficCheck("unchecked", user_days=len(rows), limit=limit, since=since.date().isoformat())
    if len(rows) < min_user_days:
        return check
    scores = loaded.model.score(np.array(rows), roles, users)
    check.alerts = int((scores > loaded.model.threshold).sum())
    check.per_1000 = round(check.alerts * 1000.0 / len(rows), 2)
    check.status = "over-budget" if check.per_1000 > limit else "ok"
    return check


@dataclasses.dataclass
class Admitted:
    loaded: store.LoadedModel
    check: TrafficCheck


def admit(
    model_dir: Path,
    key: ModelKey,
    audit_path: Path | None,
    *,
    now: datetime,
    days: int,
    factor: float,
    min_user_days: int,
    refuse_over_budget: bool,
) -> Admitted:
    """The verified model and its check on local traffic; raises store.ModelError to refuse it."""
    loaded = store.load(model_dir, key)
    check = local_alert_rate(
        loaded, audit_files(audit_path), now=now, days=days, factor=factor, min_user_days=min_user_days
    )
    if check.status == "over-budget" and refuse_over_budget:
        raise OverBudget(
            f"{model_dir}: on this gateway's last {days} days of traffic the model would raise "
            f"{check.per_1000} alerts per 1,000 user-days ({check.alerts} of {check.user_days}), over "
            f"{check.limit} ({factor:g} x its budget of {loaded.card.budget:g}): it was not trained on this "
            "CRM's traffic; train one with `crmgw detector train` on this gateway's audit log"
        )
    return Admitted(loaded, check)
