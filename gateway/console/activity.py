"""What the console computes from audit records and alert evidence: pure functions, no I/O.

* a user's activity per day (the counter an alert is about, counted exactly as the signals stage
  counts it: ``detectors.events.count_event``) and their usual range;
* usual hours and countries;
* how often each shadow rule would have denied;
* the "why" of an alert: the features/thresholds that fired, observed versus baseline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from detectors.events import COUNTERS, count_event
from gateway.audit.search import parse_time
from gateway.console.chart import Bar

WHY_KEYS = ("rule", "count", "timespan", "value", "before", "threshold", "baseline", "score")


def metric_of(evidence: dict[str, Any]) -> str:
    """The counter an alert is about (``records_exported``, ...); ``requests`` when unknown."""
    counted = evidence.get("count")
    return counted if isinstance(counted, str) and counted in COUNTERS else "requests"


def add_to_totals(totals: Counter[date], record: dict[str, Any], metric: str, tz: ZoneInfo) -> None:
    """Add one audit record to per-day totals of ``metric`` (days in ``tz``)."""
    try:
        inc = count_event(record)
    except (KeyError, ValueError, TypeError):
        return
    if inc is not None:
        totals[inc.time.astimezone(tz).date()] += inc.counts.get(metric, 0)


def daily_totals(records: Iterable[dict[str, Any]], metric: str, tz: ZoneInfo) -> Counter[date]:
    totals: Counter[date] = Counter()
    for record in records:
        add_to_totals(totals, record, metric, tz)
    return totals


def day_series(totals: Counter[date], end: date, days: int) -> list[tuple[date, int]]:
    return [(end - timedelta(days=i), totals.get(end - timedelta(days=i), 0)) for i in range(days - 1, -1, -1)]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def usual_range(series: list[tuple[date, int]]) -> tuple[float, float] | None:
    """10th to 90th percentile of the days before the last one; None with fewer than 3 such days."""
    before = [v for _, v in series[:-1]]
    if len(before) < 3:
        return None
    return percentile(before, 0.1), percentile(before, 0.9)


def activity_bars(series: list[tuple[date, int]], metric: str) -> list[Bar]:
    last = len(series) - 1
    return [
        Bar(
            label=d.strftime("%m-%d"),
            value=v,
            title=f"{d.isoformat()}: {v} {metric.replace('_', ' ')}",
            highlight=i == last,
        )
        for i, (d, v) in enumerate(series)
    ]


def hours_and_countries(records: Iterable[dict[str, Any]], tz: ZoneInfo) -> tuple[list[int], Counter[str]]:
    hours = [0] * 24
    countries: Counter[str] = Counter()
    for record in records:
        when = parse_time(record.get("time"))
        if when is not None:
            hours[when.astimezone(tz).hour] += 1
        countries[record.get("country") or "unknown"] += 1
    return hours, countries


def usual_hours(hours: list[int], share: float = 0.05) -> str:
    """Hours holding at least ``share`` of the activity, as ranges: ``08-12, 14-18``."""
    total = sum(hours)
    if not total:
        return "no activity"
    busy = [h for h in range(24) if hours[h] >= share * total]
    spans, start = [], None
    for h in range(25):
        if h < 24 and h in busy:
            start = h if start is None else start
        elif start is not None:
            spans.append(f"{start:02d}:00-{h:02d}:00")
            start = None
    return ", ".join(spans)


def hour_bars(hours: list[int]) -> list[Bar]:
    return [
        Bar(label=f"{h:02d}", value=n, title=f"{h:02d}:00-{h + 1:02d}:00: {n} requests") for h, n in enumerate(hours)
    ]


def shadow_counts(records: Iterable[dict[str, Any]]) -> dict[str, Counter[str]]:
    """rule id -> Counter of what it would have done (``deny``/``allow``)."""
    out: dict[str, Counter[str]] = {}
    for record in records:
        for s in record.get("shadow") or ():
            if isinstance(s, dict) and s.get("rule"):
                out.setdefault(str(s["rule"]), Counter())[str(s.get("would"))] += 1
    return out


def why_rows(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The features or thresholds that fired: name, observed, threshold, baseline.

    Threshold alerts carry one counter (``count``/``value``/``threshold``/``baseline``); detector
    alerts carry ``features`` (a list of ``{name, value, baseline|usual, ...}`` or a mapping of
    name to such a dict or to a number). Anything else is shown raw by the page. A detector feature
    also says how it compares with the user's own closed days (``own``: usual, max, days; null for
    a user without history) and with the peer group (``peer``: group, usual): gateway/scoring/evidence.py.
    """
    rows = []
    if "value" in evidence and ("threshold" in evidence or "count" in evidence):
        rows.append(
            {
                "name": f"{evidence.get('count', 'value')} in {evidence.get('timespan', '?')}",
                "observed": evidence.get("value"),
                "threshold": evidence.get("threshold"),
                "baseline": evidence.get("baseline"),
                "before": evidence.get("before"),
            }
        )
    features = evidence.get("features") or evidence.get("top_features") or evidence.get("contributions")
    if isinstance(features, dict):
        features = [{"name": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in features.items()]
    for f in features if isinstance(features, list) else ():
        if isinstance(f, dict):
            row = {
                "name": f.get("name") or f.get("feature") or "?",
                "observed": f.get("value", f.get("observed")),
                "threshold": f.get("threshold"),
                "baseline": f.get("baseline", f.get("usual", f.get("median"))),
                "before": f.get("z", f.get("deviation", f.get("contribution"))),
            }
            if "own" in f or "peer" in f:
                row["own"], row["peer"] = _own(f.get("own")), _peer(f.get("peer"))
            rows.append(row)
    return rows


def _usual(d: dict[str, Any]) -> Any:
    return d.get("usual", d.get("median"))


def _own(own: Any) -> dict[str, Any] | None:
    """The user's own baseline of a feature; None: no history (a new user)."""
    if not isinstance(own, dict):
        return None
    return {"usual": _usual(own), "max": own.get("max"), "days": own.get("days")}


def _peer(peer: Any) -> dict[str, Any] | None:
    if not isinstance(peer, dict):
        return None
    return {"usual": _usual(peer), "group": peer.get("group")}


def why_drivers(evidence: dict[str, Any], limit: int = 10) -> list[str]:
    """The detector's sentences on what drove the score (``evidence.drivers``), text only."""
    drivers = evidence.get("drivers")
    return [d for d in drivers if isinstance(d, str)][:limit] if isinstance(drivers, list) else []


def other_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """Evidence not already shown in the why table, the chart or the requests table."""
    skip = set(WHY_KEYS) | {"features", "top_features", "contributions", "recent_requests", "drivers"}
    return {k: v for k, v in evidence.items() if k not in skip}


def local_time(value: Any, tz: ZoneInfo) -> datetime | None:
    when = parse_time(value) if not isinstance(value, datetime) else value
    return when.astimezone(tz) if when is not None else None
