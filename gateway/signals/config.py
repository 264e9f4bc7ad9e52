"""The ``signals:`` section of gateway.yaml: where behaviour counters live and what happens without them.

    signals:
      backend: auto                  # auto | redis | memory (auto: redis when a Redis URL is set;
                                     # memory: one instance only, the demo default)
      redis_url: redis://127.0.0.1:6379/0    # optional; falls back to the top-level redis_url
      fail_mode:                     # while Redis is unreachable or refuses writes (maxmemory,
                                     # read-only replica): open (serve) or closed (503)
        default: open
        export: closed               # a catalogue action ...
        delete: closed
        customers.import: closed     # ... or an exact operation id (wins over the action)
      batch_wait: 0.005              # seconds events gather before one counting round trip (0: none)

Fail modes are looked up operation first, then action, then ``default``: an admin can say "exports
fail closed, reads continue" without listing every resource.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from gateway.model import ACTIONS
from gateway.rulefile import StrictModel

FailMode = Literal["open", "closed"]
OPERATION_ID = re.compile(r"^[a-z0-9_-]+\.[a-z0-9_-]+$")
DEFAULT_FAIL_MODE: dict[str, FailMode] = {"default": "open", "export": "closed", "delete": "closed"}


class SignalsConfig(StrictModel):
    # auto: Redis when a Redis URL is configured (here or top-level redis_url), else in-process.
    backend: Literal["auto", "redis", "memory"] = "auto"
    redis_url: str | None = None
    fail_mode: dict[str, FailMode] = Field(default_factory=lambda: dict(DEFAULT_FAIL_MODE))
    # Events waiting for the background worker; beyond this they are dropped (and counted).
    queue_size: int = Field(10_000, ge=1)
    # Events sent to Redis in one pipeline when several are queued (still one round trip).
    batch_size: int = Field(64, ge=1, le=1000)
    # Seconds the worker lets events gather after the first one before sending a batch: one round
    # trip then carries several events (redis-py costs ~100 us of CPU per round trip, as much as
    # counting a few events). Held-back events reach Redis late and out of order with other
    # instances' events; counting does not depend on their order (sequential ids are adjacent pairs
    # of the ids viewed, window sums take late events in: gateway/signals/lua.py), so the cost is
    # only that a finding -- and its block -- comes this much later (tests/signals/test_replicas.py
    # measures it). 0 sends as soon as the worker is free.
    batch_wait: float = Field(0.005, ge=0, le=1.0)
    # Daily totals kept per user for "more than N times the user's largest day".
    history_days: int = Field(30, ge=7, le=400)
    # How long an IP / network / country / user agent stays "known" after it was last seen.
    remember_days: int = Field(28, ge=1, le=400)
    # Known values kept per user and kind (oldest forgotten first).
    remember_max: int = Field(500, ge=10, le=100_000)
    # Audit records kept per user as alert evidence.
    recent_requests: int = Field(20, ge=1, le=200)
    # Backstop: reload block/step-up state from Redis this often (pub/sub does it immediately).
    reload_interval: float = Field(30.0, gt=0)
    reconnect_min: float = Field(0.2, gt=0)
    reconnect_max: float = Field(10.0, gt=0)

    @field_validator("fail_mode")
    @classmethod
    def _fail_mode_keys(cls, value: dict[str, FailMode]) -> dict[str, FailMode]:
        for key in value:
            if key != "default" and key not in ACTIONS and not OPERATION_ID.match(key):
                raise ValueError(
                    f"fail_mode key {key!r} must be 'default', an action ({', '.join(ACTIONS)}) "
                    "or an operation id such as customers.export"
                )
        return {"default": "open", **value}

    def fail_mode_for(self, operation: str | None) -> FailMode:
        """The configured fail mode of one operation: operation, then action, then default.

        An unknown operation (None) uses ``default``; the policy has already denied it anyway.
        """
        if operation:
            if operation in self.fail_mode:
                return self.fail_mode[operation]
            action = operation.partition(".")[2]
            if action in self.fail_mode:
                return self.fail_mode[action]
        return self.fail_mode["default"]
