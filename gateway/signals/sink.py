"""Where behaviour findings go: an alert sink, and the arguments of one alert.

The signals stage (thresholds, lost counter data: gateway/signals/epoch.py) and the detector
(gateway.scoring) raise their alerts through ``AlertSink.raise_alert``; the gateway's sink is the
alert store (gateway.alerts.store.AlertStore), tests give a collecting one.
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict


class AlertArgs(TypedDict):
    """The keyword arguments of one ``raise_alert`` call."""

    user: str
    type: str
    level: str
    score: float
    summary: str
    evidence: dict[str, Any]
    rule: str
    window: str
    source: str


class AlertSink(Protocol):
    async def raise_alert(
        self,
        *,
        user: str,
        type: str,
        level: str,
        score: float,
        summary: str,
        evidence: dict[str, Any],
        rule: str,
        window: str,
        source: str = "threshold",
    ) -> str | None: ...
