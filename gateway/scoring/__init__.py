"""The live detector (gateway.services.ScoringPart), a small package:

    config       ScoringConfig (``scoring:`` in gateway.yaml)
    livestate    the per-user state every replica shares (Redis, or memory without redis_url)
    userview     one user's features from that state, as the offline replay computes them
    modelgate    whether a model may serve here (signed card, alert rate on local traffic)
    evidence     the alert: drivers against the user's own and the peer baseline
    scorer       Scorer: queue, batches, hot reload, health

Nothing here imports numpy or scikit-learn at module level (see detectors.store): a gateway without
a model, and every other ``crmgw`` command, starts without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gateway.clock import Clock, utc_now
from gateway.scoring.config import ScoringConfig
from gateway.scoring.evidence import ALERT_TYPE, level_for, summary_for
from gateway.scoring.livestate import LiveState, MemoryLiveState, RedisLiveState
from gateway.scoring.scorer import Scorer

if TYPE_CHECKING:
    from detectors.signing import ModelKey
    from gateway.redisconn import RedisClient
    from gateway.signals.sink import AlertSink

__all__ = ["ALERT_TYPE", "Scorer", "ScoringConfig", "build_scorer", "level_for", "summary_for"]


def build_scorer(
    config: ScoringConfig,
    *,
    alerts: AlertSink,
    clock: Clock | None = None,
    base_dir: Path | None = None,
    redis: RedisClient | None = None,
    audit_path: Path | None = None,
    key: ModelKey | None = None,
) -> Scorer:
    """The scorer; with ``redis`` its live state is shared by every replica using that Redis."""
    state: LiveState = RedisLiveState(redis, config.key_prefix) if redis is not None else MemoryLiveState()
    return Scorer(
        config, alerts=alerts, clock=clock or utc_now, base_dir=base_dir, state=state, audit_path=audit_path, key=key
    )
