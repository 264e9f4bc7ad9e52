"""Live scoring with the trained detector, off the request hot path, the same on every replica.

The pipeline hands every audit record to :meth:`Scorer.submit` (no I/O: one append to a bounded
deque; when it is full the record is dropped and counted). Every ``batch_interval`` seconds
(gateway.background.Periodic) :meth:`Scorer.drain` appends the queued records to the live state
shared by all replicas (gateway.scoring.livestate: Redis, or memory without ``redis_url``), fetches
what changed for the users of the batch, replays it on top of their stored history
(gateway.scoring.userview: the training's aggregator and features), scores the day, and raises a
``detector-anomaly`` alert with the evidence of gateway.scoring.evidence — at most once per user-day
across replicas unless the score grows by RESCORE_FACTOR. CPU work runs in a worker thread.

The model (gateway.scoring.modelgate) is admitted only when its signed card verifies with this
deployment's key and its alert rate on local traffic fits its budget. ``card.json`` is watched:
a new model is admitted aside and swapped in; a refused one leaves the old one serving (health
shows why and the model in use stays: the rollback).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors import store
from detectors.signing import ModelKey, WeakModelKey, model_key
from gateway.background import Periodic
from gateway.clock import Clock
from gateway.scoring.config import ScoringConfig
from gateway.scoring.evidence import finding
from gateway.scoring.livepeers import LivePeers
from gateway.scoring.livestate import Fetch, Fetched, LiveState, MemoryLiveState
from gateway.scoring.modelgate import Admitted, TrafficCheck, admit
from gateway.scoring.rowsfile import RowsFile
from gateway.scoring.userview import UserView, build_view, compact, epoch_ms

if TYPE_CHECKING:
    from gateway.model import Flow
    from gateway.ruleset import RuleSet
    from gateway.services import AuditRecord
    from gateway.signals.sink import AlertArgs, AlertSink

log = logging.getLogger("crmgw.scoring")
RESCORE_FACTOR = 1.2  # an open alert is updated when the day's score grows by this much
MAX_VIEWS = 10_000  # users whose replayed view a replica keeps (least recently scored go first; a
# dropped view is rebuilt from the shared state)


class Scorer:
    """The Observer of the trained detector (gateway.services.ScoringPart)."""

    def __init__(
        self,
        config: ScoringConfig,
        *,
        alerts: AlertSink,
        clock: Clock,
        base_dir: Path | None = None,
        state: LiveState | None = None,
        audit_path: Path | None = None,
        key: ModelKey | None = None,
    ):
        self.config = config
        self.alerts = alerts
        self.clock = clock
        self.model_dir = (Path(base_dir or ".") / config.model_dir) if config.model_dir else None
        self.state: LiveState = state or MemoryLiveState()
        self.audit_path = audit_path
        self.rows = RowsFile(Path(base_dir or ".") / config.rows_dir) if config.rows_dir else None
        self.key = key  # None: the one in scoring.model_key_env (detectors.signing.model_key)
        self.loaded: store.LoadedModel | None = None
        self.peers = LivePeers({})  # the loaded model's, and those learned live
        self.check: TrafficCheck | None = None
        self.status = "missing"
        self.problem: str | None = None
        self.reload_error: str | None = None
        self.reloads = 0
        self.queue: collections.deque[AuditRecord] = collections.deque()
        self.views: collections.OrderedDict[str, UserView] = collections.OrderedDict()
        self.scored = self.errors = self.dropped = self.raised = 0
        self.failing = False  # the last batch could not be scored
        self._card_seen: tuple[int, int] | None = None
        self._next_watch = 0.0
        self._batches = Periodic("detector-scoring", config.batch_interval, self.tick)
        self._lock = asyncio.Lock()

    # --- the hot path ----------------------------------------------------------------------
    def submit(self, flow: Flow | None, record: AuditRecord, ruleset: RuleSet | None = None) -> None:
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

    async def tick(self) -> None:
        if self.config.watch_interval and time.monotonic() >= self._next_watch:
            self._next_watch = time.monotonic() + self.config.watch_interval
            if self._card_signature() != self._card_seen:
                await self.load()
        await self.drain()

    def _card_signature(self) -> tuple[int, int] | None:
        try:
            st = (self.model_dir / store.CARD_FILE).stat() if self.model_dir else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size) if st else None

    async def load(self) -> None:
        """Admits the model directory's model; a refusal keeps the one in use (health says why)."""
        if self.model_dir is None:
            self.loaded, self.status, self.problem = None, "missing", "no scoring.model_dir configured"
            return
        self._card_seen = self._card_signature()
        c = self.config
        try:
            key = self.key or model_key(c.model_key_env)
            admitted: Admitted = await asyncio.to_thread(
                admit,
                self.model_dir,
                key,
                self.audit_path,
                now=self.clock(),
                days=c.check_days,
                factor=c.check_factor,
                min_user_days=c.check_min_user_days,
                refuse_over_budget=c.over_budget == "refuse",
            )
        except Exception as exc:
            status = exc.status if isinstance(exc, store.ModelError) else "refused"
            known = isinstance(exc, (store.ModelError, WeakModelKey))
            message = str(exc) if known else f"cannot load model: {exc}"
            log.error("detector model not used: %s", message)
            if self.loaded is not None:  # keep serving the last good model
                self.reload_error = message
                return
            self.status, self.problem = status, message
            return
        async with self._lock:
            if self.loaded is not None:
                self.reloads += 1
            self.loaded, self.check = admitted.loaded, admitted.check
            self.peers = LivePeers(admitted.loaded.history)
            self.views.clear()  # views of unseen users were seeded from the old model's history
        self.problem = self.reload_error = None
        self.status = "stale" if self._is_stale(admitted.loaded.card) else "loaded"
        log.info("detector model %s in use (%s)", admitted.loaded.card.sha256[:16], self.status)

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
                findings = await self._score_batch(batch, loaded)
                self.failing = False
            except Exception:
                self.errors += 1
                self.failing = True  # e.g. Redis unreachable: the batch's records are lost
                log.exception("detector scoring failed for a batch of %d records", len(batch))
                return
        for args in findings:
            try:
                await self.alerts.raise_alert(**args)
                self.raised += 1
            except Exception:
                self.errors += 1
                log.exception("detector alert for %s could not be raised", args["user"])

    async def _score_batch(self, batch: list[AuditRecord], loaded: store.LoadedModel) -> list[AlertArgs]:
        items = []
        for record in batch:
            try:
                items.append((str(record["user"]), epoch_ms(record), compact(record)))
            except Exception:
                self.errors += 1
                log.exception("audit record could not be queued for the detector")
        await self.state.append(items)
        await self.peers.share(self.state, items)
        users = list(dict.fromkeys(user for user, _, _ in items))
        wanted = [self._cached_fetch(u) for u in users]
        fetched = await self.state.fetch(wanted)
        await self.peers.learn(self.state, fetched)
        scored = await asyncio.to_thread(self._replay_and_score, fetched, loaded)
        grace = int(self.config.grace_seconds * 1000)
        for view in [v for v in self.views.values() if v.closable(grace) is not None]:
            through = view.closable(grace)
            assert through is not None
            if await self.state.persist(view.user, view.through_ms, through, view.state()):
                closed = view.stored(through)
                if self.rows is not None:  # this replica stored the days: it writes their rows
                    await asyncio.to_thread(self.rows.write, view.user, closed)
            else:  # another replica stored it first: rebuild from the state next time
                self.views.pop(view.user, None)
        findings: list[AlertArgs] = []
        for view, x, score in scored:
            window = view.window
            assert window is not None
            if await self.state.mark_alert(view.user, window.day, score, RESCORE_FACTOR):
                findings.append(finding(loaded, view, window, x, score))  # type: ignore[arg-type]
        return findings

    def _cached_fetch(self, user: str) -> Fetch:
        view = self.views.get(user)
        if view is None:
            return Fetch(user)
        return Fetch(user, view.through_ms, view.count, view.last_ms)

    def _replay_and_score(self, fetched: list[Fetched], loaded: store.LoadedModel) -> list[tuple[UserView, Any, float]]:
        views = self._replay(fetched, loaded)
        if not views:
            return []
        X, scores = self._scores(views, loaded)
        self.scored += len(views)
        return [(views[i], X[i], float(scores[i])) for i in range(len(views)) if scores[i] > loaded.model.threshold]

    def _replay(self, fetched: list[Fetched], loaded: store.LoadedModel) -> list[UserView]:
        """Brings the users' views up to date; returns those with an open day."""
        views = []
        for f in fetched:
            view = self.views.get(f.user)
            if f.full or view is None:
                view = build_view(f, loaded.history, peers=self.peers.peers)
            self.errors += view.replay(f.members)
            self.views[f.user] = view
            self.views.move_to_end(f.user)
            if view.window is not None:
                views.append(view)
        while len(self.views) > MAX_VIEWS:
            self.views.popitem(last=False)
        return views

    @staticmethod
    def _scores(views: list[UserView], loaded: store.LoadedModel) -> tuple[Any, Any]:
        import numpy as np  # here, not at module level: only a loaded model needs numpy

        X = np.array([v.features() for v in views])
        roles = [v.window.role if v.window else "-" for v in views]
        return X, loaded.model.score(X, roles, [v.user for v in views])

    async def live_score(self, user: str) -> float | None:
        """The user's score for their current day from the shared state, as any replica sees it
        (refreshes this replica's view; None: no model or no open day)."""
        async with self._lock:
            loaded = self.loaded
            if loaded is None:
                return None
            fetched = await self.state.fetch([self._cached_fetch(user)])
            await self.peers.learn(self.state, fetched)
            views = await asyncio.to_thread(self._replay, fetched, loaded)
            if not views:
                return None
            return float(self._scores(views, loaded)[1][0])

    # --- health ------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        out = []
        if self.loaded is not None and self.loaded.key.demo:
            out.append("detector-model-demo-key")
        if self.check is not None and self.check.status == "over-budget":
            out.append("detector-model-over-budget")
        if self.reload_error:
            out.append("detector-model-reload-failed")
        if self.failing:
            out.append("detector-scoring-failing")
        return out

    def health(self) -> dict[str, Any]:
        card = self.loaded.card if self.loaded else None
        return {
            "model": self.status,
            "problem": self.problem,
            "problems": self.problems(),
            "trained_at": card.trained_at if card else None,
            "card": {
                "threshold": card.threshold,
                "budget": card.budget,
                "budget_unit": card.budget_unit,
                "training_range": list(card.training_range),
                "sha256": card.sha256,
                "features": len(card.features),
                "versions": card.versions,
                "signed_by": self.loaded.key.describe() if self.loaded else None,
            }
            if card
            else None,
            "local_traffic": self.check.as_dict() if self.check else None,
            "reloads": self.reloads,
            "reload_error": self.reload_error,
            "live_state": self.state.describe(),
            "live_records_not_kept": self.state.not_kept,  # over a user's open-record bound
            "rows": {"path": str(self.rows.path), "written": self.rows.written, "failed": self.rows.failed}
            if self.rows
            else None,
            "scored": self.scored,
            "alerts": self.raised,
            "errors": self.errors,
            "dropped": self.dropped,
            "queued": len(self.queue),
        }
