"""What one audit record adds to a user's behaviour counters: the single definition of counting.

The gateway's Redis counters (gateway/signals) and the offline replay of audit logs
(detectors.replay) both call :func:`count_event`, so a feature means the same thing in training and
in serving. Stateful signals (first-seen IPs, distinct records, sequential ids) are described here
as *keys*; each backend keeps the state its own way (Redis sets/HyperLogLogs, Python sets).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Counter names, stable: they are Redis hash fields, feature names and rule-file vocabulary.
COUNTERS = (
    "requests",
    "denials",
    "records_read",
    "records_exported",
    "records_deleted",
    "exports",
    "deletes",
    "off_hours",
)
# Working hours for "off_hours": Monday-Friday, 07:00-20:00 in the user's own time zone.
WORK_START, WORK_END = 7, 20

# A streamed export writes two audit lines: this one before its first row goes out (so a gateway
# killed mid-export still leaves a line), then the request's own line at the end. Only the second
# is the request: every reader that counts, replays or lists requests skips the first
# (gateway.audit.events.stream_start_record writes it; defined here, where detectors can see it).
PHASE_KEY = "phase"
STREAM_STARTED = "stream-started"


def is_stream_start(record: Mapping[str, Any]) -> bool:
    """The "stream started" line of a streamed export: not a request of its own."""
    return record.get(PHASE_KEY) == STREAM_STARTED


@dataclasses.dataclass(frozen=True, slots=True)
class Increments:
    user: str
    time: datetime
    resource: str | None
    action: str | None
    counts: dict[str, int]
    record_keys: tuple[str, ...]  # "resource:id" of every record returned (distinct_records)
    record_id: int | None  # a single-record view's numeric id (sequential-id access)
    ip: str | None
    network: str | None  # /24 (IPv4) or /48 (IPv6) of the client address
    country: str | None
    user_agent: str | None


@lru_cache(maxsize=256)
def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def is_off_hours(when: datetime, timezone_name: str | None) -> bool:
    local = when.astimezone(zone_of(timezone_name))
    return local.weekday() >= 5 or not (WORK_START <= local.hour < WORK_END)


@lru_cache(maxsize=65536)  # a user's few addresses recur on every request; parsing is the cost
def network_of(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def count_event(record: Mapping[str, Any]) -> Increments | None:
    """The increments one audit record contributes; None for records without a user and for a
    streamed export's start line (its request is counted once, from its final line)."""
    user = record.get("user")
    if not user or is_stream_start(record):
        return None
    when = parse_time(record["time"])
    operation = record.get("operation") or ""
    resource, _, action = operation.partition(".")
    allowed = record.get("effect") == "allow" and (record.get("status") or 0) < 400
    returned = int(record.get("records_returned") or 0) if allowed else 0
    counts = dict.fromkeys(COUNTERS, 0)
    counts["requests"] = 1
    counts["denials"] = 0 if allowed else 1
    if action == "export":
        counts["exports"] = 1
        counts["records_exported"] = returned
    elif action in ("view", "list"):
        counts["records_read"] = returned
    elif action == "delete" and allowed:
        counts["deletes"] = 1
        counts["records_deleted"] = max(1, returned, int(record.get("targets") or 0))
    counts["off_hours"] = 1 if is_off_hours(when, record.get("timezone")) else 0
    ids = record.get("record_ids") or ()
    record_id = None
    rid = record.get("resource_id")
    if action == "view" and rid is not None and str(rid).isdigit():
        record_id = int(rid)
    return Increments(
        user=user,
        time=when,
        resource=resource or None,
        action=action or None,
        counts=counts,
        record_keys=tuple(f"{resource}:{i}" for i in ids) if allowed else (),
        record_id=record_id if allowed else None,
        ip=record.get("client_ip"),
        network=network_of(record.get("client_ip")),
        country=record.get("country"),
        user_agent=(record.get("user_agent") or None),
    )
