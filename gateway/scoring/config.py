"""``scoring:`` in gateway.yaml (imported by gateway.settings for every command: no numpy here)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.rulefile import StrictModel


class ScoringConfig(StrictModel):
    """``scoring:`` in gateway.yaml."""

    model_dir: str | None = None  # a `crmgw detector train --out` directory; None = no detector
    batch_interval: float = Field(5.0, gt=0, le=3600)
    max_queue: int = Field(10_000, ge=1, le=10_000_000)
    stale_after_days: int = Field(45, ge=1)  # health says "stale" once the model is this old
    watch_interval: float = Field(10.0, ge=0, le=86400)  # card.json checked this often; 0: never
    grace_seconds: float = Field(120.0, ge=0, le=86400)  # a day is stored once records are this far past it
    model_key_env: str = "CRMGW_MODEL_KEY"  # the variable holding the key model cards are signed with
    rows_dir: str | None = None  # closed days' feature rows are appended here (detectors.liverows)
    key_prefix: str = Field("crmgw:det", min_length=1)  # Redis keys of the live state
    # before a model serves: its alert rate on the last check_days of this gateway's audit log
    check_days: int = Field(7, ge=1, le=90)
    check_factor: float = Field(3.0, gt=1)  # "far above the budget": this many times the budget
    check_min_user_days: int = Field(100, ge=1)  # fewer local user-days: "unchecked"
    over_budget: Literal["refuse", "flag"] = "refuse"
