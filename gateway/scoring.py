"""Live scoring with the trained detector, off the request hot path.

The pipeline hands every audit record to :meth:`Scorer.submit` (no I/O: one append to a bounded
deque; when it is full the record is dropped and counted, so the proxy is never slowed; anything
unexpected is caught, logged and counted by gateway.services.Services.finish). A background job
(gateway.background.Periodic) runs every ``batch_interval`` seconds, feeds the queued records
through the same aggregator the trainer replays audit logs with (detectors.replay), computes the
features of every user-day window that saw new records, scores them, and raises a
``detector-anomaly`` alert for a score over the calibrated threshold — with the features that drove
it, their values, baselines and shares. CPU work runs in a worker thread; alerts are awaited on the
loop.

A missing, refused (tampered, untrusted types, other scikit-learn) or stale model is a health
state, never a crash: without a usable model ``submit`` does nothing. Exceptions while scoring are
caught, counted and logged.

Nothing here imports numpy or scikit-learn at module level (see detectors.store): a gateway without
a model, and every other ``crmgw`` command, starts without them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from detectors import store
from detectors.features import BY_NAME, compute
from detectors.replay import Aggregator, Window
from gateway.background import Periodic
from gateway.clock import Clock, utc_now
from gateway.rulefile import StrictModel

if TYPE_CHECKING:
    from detectors.baseline import FloatArray
    from gateway.model import Flow
    from gateway.ruleset import RuleSet
    from gateway.services import AuditRecord
    from gateway.signals.sink import AlertArgs, AlertSink

log = logging.getLogger("crmgw.scoring")
ALERT_TYPE = "detector-anomaly"
RECENT_REQUESTS = 10
RESCORE_FACTOR = 1.2  # an open alert is updated when the day's score grows by this much


class ScoringConfig(StrictModel):
    """``scoring:`` in gateway.yaml."""

    model_dir: str | None = None  # a `crmgw detector train --out` directory; None = no detector
    batch_interval: float = Field(5.0, gt=0, le=3600)
    max_queue: int = Field(10_000, ge=1, le=10_000_000)
    stale_after_days: int = Field(45, ge=1)  # health says "stale" once the model is this old


def level_for(score: float, threshold: float) -> str:
    if score >= 2.0 * threshold:
        return "critical"
    if score >= 1.4 * threshold:
        return "high"
    return "medium"


def summary_for(user: str, day: str, explanation: dict[str, Any]) -> str:
    parts = []
    for name, f in list(explanation["features"].items())[:3]:
        if f["contribution"] > 0:
            parts.append(f"{BY_NAME[name].description} {f['value']:g} (role usual {f['baseline']:g})")
    drivers = "; ".join(parts) or "an unusual combination of activity"
    return f"{user} on {day}: {drivers}"


class Scorer:
    """The Observer of the trained detector (gateway.services.ScoringPart)."""

    def __init__(self, config: ScoringConfig, *, alerts: AlertSink, clock: Clock, base_dir: Path | None = None):
        self.config = config
        self.alerts = alerts
        self.clock = clock
        self.model_dir = (Path(base_dir or ".") / config.model_dir) if config.model_dir else None
        self.loaded: store.LoadedModel | None = None
        self.status = "missing"
        self.problem: str | None = None
        self.queue: collections.deque[AuditRecord] = collections.deque()
        self.aggregator = Aggregator()
        self.recent: dict[str, collections.deque[dict[str, Any]]] = {}
        self.alerted: dict[tuple[str, str], float] = {}
        self.scored = self.errors = self.dropped = self.raised = 0
        self._batches = Periodic("detector-scoring", config.batch_interval, self.drain)
        self._lock = asyncio.Lock()

    # --- the hot path ----------------------------------------------------------------------
    def submit(self, flow: Flow, record: AuditRecord, ruleset: RuleSet | None = None) -> None:
        if self.loaded is None or not record.get("user"):
            return
        if len(self.queue) >= self.config.max_queue:
            self.dropped += 1
            return
        self.queue.append(record)

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.load()
        self._batches.start()

    async def stop(self) -> None:
        await self._batches.stop()
        await self.drain()

    async def load(self) -> None:
        """(Re)loads the model; any failure becomes the health status, never an exception."""
        if self.model_dir is None:
            self.loaded, self.status, self.problem = None, "missing", "no scoring.model_dir configured"
            return
        try:
            loaded = await asyncio.to_thread(store.load, self.model_dir)
        except store.ModelError as exc:
            self.loaded, self.status, self.problem = None, exc.status, str(exc)
            log.error("detector model not used: %s", exc)
            return
        except Exception as exc:
            self.loaded, self.status, self.problem = None, "refused", f"cannot load model: {exc}"
            log.exception("detector model could not be loaded")
            return
        self.aggregator = Aggregator()
        self.aggregator.load_state(loaded.history)
        self.loaded, self.problem = loaded, None
        self.status = "stale" if self._is_stale(loaded.card) else "loaded"
        log.info(
            "detector model loaded from %s (threshold %.3f, %s)", self.model_dir, loaded.model.threshold, self.status
        )

    def _is_stale(self, card: store.Card) -> bool:
        try:
            trained = datetime.fromisoformat(card.trained_at)
        except ValueError:
            return True
        return (self.clock() - trained).days >= self.config.stale_after_days

    # --- the batch ---------------------------------------------------------------------------
    async def drain(self) -> None:
        """Scores everything queued so far and raises the alerts; never raises."""
        async with self._lock:
            loaded = self.loaded
            if loaded is None or not self.queue:
                return
            batch = []
            while self.queue:
                batch.append(self.queue.popleft())
            try:
                findings = await asyncio.to_thread(self._score, batch, loaded)
            except Exception:
                self.errors += 1
                log.exception("detector scoring failed for a batch of %d records", len(batch))
                return
            for finding in findings:
                try:
                    await self.alerts.raise_alert(**finding)
                    self.raised += 1
                except Exception:
                    self.errors += 1
                    log.exception("detector alert for %s could not be raised", finding["user"])

    def _score(self, batch: list[AuditRecord], loaded: store.LoadedModel) -> list[AlertArgs]:
        # Here, not at module level: settings import this module for every crmgw command, and
        # numpy is only needed once a model is loaded (detectors.store imports it then anyway).
        import numpy as np

        agg = self.aggregator
        active: dict[str, None] = {}
        for record in batch:
            try:
                user = agg.add(record)
            except Exception:
                self.errors += 1
                log.exception("audit record could not be counted")
                continue
            if user is not None and user in agg.windows:
                active[user] = None
                self.recent.setdefault(user, collections.deque(maxlen=RECENT_REQUESTS)).append(_request_summary(record))
        if not active:
            return []
        users = list(active)
        windows = [agg.windows[u] for u in users]
        X = np.array([compute(w, agg.history[u], agg.exported_by_day.get(u)) for u, w in zip(users, windows)])
        roles = [w.role for w in windows]
        scores = loaded.model.score(X, roles, users)
        self.scored += len(users)
        threshold = loaded.model.threshold
        findings: list[AlertArgs] = []
        for i in np.flatnonzero(scores > threshold):
            user, day, score = users[i], windows[i].day, float(scores[i])
            last = self.alerted.get((user, day))
            if last is not None and score < last * RESCORE_FACTOR:
                continue
            self.alerted[(user, day)] = score
            findings.append(self._finding(loaded, user, windows[i], X[i], score, threshold))
        self._forget_old_days()
        return findings

    def _finding(
        self, loaded: store.LoadedModel, user: str, window: Window, x: FloatArray, score: float, threshold: float
    ) -> AlertArgs:
        card = loaded.card
        explanation = loaded.model.explain(x, window.role, user)
        evidence = {
            "day": window.day,
            "features": explanation["features"],
            "score": round(score, 3),
            "threshold": round(threshold, 3),
            "rarity": explanation["rarity"],
            "isolation": explanation["isolation"],
            "baseline_group": explanation["baseline_group"],
            "counters": dict(sorted(window.counts.items())),
            "recent_requests": list(self.recent.get(user, ())),
            "model": {"trained_at": card.trained_at, "sha256": card.sha256[:16], "budget": card.budget},
        }
        return {
            "user": user,
            "type": ALERT_TYPE,
            "level": level_for(score, threshold),
            "score": round(score, 3),
            "summary": summary_for(user, window.day, explanation),
            "evidence": evidence,
            "rule": "detector",
            "window": window.day,
            "source": "detector",
        }

    def _forget_old_days(self) -> None:
        if len(self.alerted) > 10_000:
            newest = max(day for _, day in self.alerted)
            self.alerted = {k: v for k, v in self.alerted.items() if k[1] == newest}

    def health(self) -> dict[str, Any]:
        card = self.loaded.card if self.loaded else None
        return {
            "model": self.status,
            "problem": self.problem,
            "trained_at": card.trained_at if card else None,
            "card": {
                "threshold": card.threshold,
                "budget": card.budget,
                "budget_unit": card.budget_unit,
                "training_range": list(card.training_range),
                "sha256": card.sha256,
                "features": len(card.features),
                "versions": card.versions,
            }
            if card
            else None,
            "scored": self.scored,
            "alerts": self.raised,
            "errors": self.errors,
            "dropped": self.dropped,
            "queued": len(self.queue),
        }


def _request_summary(record: AuditRecord) -> dict[str, Any]:
    return {
        k: record.get(k)
        for k in ("time", "method", "path", "operation", "status", "records_returned", "client_ip", "country")
    }


def build_scorer(
    config: ScoringConfig, *, alerts: AlertSink, clock: Clock | None = None, base_dir: Path | None = None
) -> Scorer:
    return Scorer(config, alerts=alerts, clock=clock or utc_now, base_dir=base_dir)
