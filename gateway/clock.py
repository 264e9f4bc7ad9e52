"""The one clock: every part that needs the time takes a ``Clock`` (tests pass a fixed one).

create_app's ``clock`` reaches the pipeline, the audit lines, the stores, the signals stage and the
scorer, so a test that sets the time sets it for all of them at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
