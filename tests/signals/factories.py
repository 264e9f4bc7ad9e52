"""Audit records, rule files and a collecting alert sink for the signals tests."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from detectors.events import count_event
from gateway.signals import AnomalyRules, load_anomalies
from gateway.signals.counters import GroupQuery, count_request

PARIS = ZoneInfo("Europe/Paris")
# Tuesday 3 March 2026, 10:00 in Paris: working hours for alice (Europe/Paris).
T0 = datetime(2026, 3, 3, 10, 0, tzinfo=PARIS)
NIGHT = datetime(2026, 3, 3, 23, 30, tzinfo=PARIS)
OPERATIONS = {
    "customers.view",
    "customers.list",
    "customers.export",
    "customers.delete",
    "customers.update",
    "contacts.view",
    "contacts.list",
    "deals.view",
}
ROLES = {"sales_rep", "sales_manager", "admin", "reporting_service"}
USERS = {"alice", "bob", "grace", "svc-reporting"}
_counter = iter(range(1, 10**9))


def record(
    user: str = "alice",
    operation: str = "customers.view",
    *,
    when: datetime = T0,
    effect: str = "allow",
    status: int = 200,
    returned: int | None = None,
    ids: list[str] | None = None,
    resource_id: str | None = None,
    ip: str = "198.51.100.7",
    country: str | None = "FR",
    user_agent: str = "crm-client/1.0",
    targets: int | None = None,
    roles: list[str] | None = None,
    tz: str = "Europe/Paris",
) -> dict[str, Any]:
    """An audit record as gateway/audit/events.py writes it (only the fields counting reads)."""
    if ids is None:
        ids = [resource_id] if resource_id is not None else []
    n = next(_counter)
    return {
        "time": when.isoformat(),
        "request_id": f"req{n:06d}",
        "decision_id": f"req{n:06d}",
        "user": user,
        "roles": roles or ["sales_rep"],
        "timezone": tz,
        "client_ip": ip,
        "country": country,
        "method": "GET",
        "path": f"/api/{operation}",
        "user_agent": user_agent,
        "operation": operation,
        "resource_id": resource_id,
        "effect": effect,
        "status": status,
        "records_returned": returned if returned is not None else len(ids),
        "record_ids": ids,
        "targets": targets,
        "reason": "ok" if effect == "allow" else "role-unauthorized",
    }


def view(user: str = "alice", rid: int = 1, **kw) -> dict[str, Any]:
    resource = kw.pop("resource", "customers")
    return record(user, f"{resource}.view", resource_id=str(rid), **kw)


def export(user: str = "alice", n: int = 300, **kw) -> dict[str, Any]:
    return record(user, "customers.export", returned=n, ids=[str(i) for i in range(1, min(n, 200) + 1)], **kw)


def delete(user: str = "alice", n: int = 1, **kw) -> dict[str, Any]:
    return record(user, "customers.delete", returned=0, targets=n, **kw)


def later(seconds: float, start: datetime = T0) -> datetime:
    return start + timedelta(seconds=seconds)


def request_for(rec: dict[str, Any], *groups: GroupQuery):
    """The backend request for ``rec`` with explicit group queries (default: the user group)."""
    inc = count_event(rec)
    assert inc is not None
    return count_request(inc, rec, list(groups) or [GroupQuery("g:")])


def write_rules(tmp_path: Path, body: str, name: str = "anomalies.yaml") -> Path:
    path = tmp_path / name
    path.write_text("format: crmgw.rules/v1\nrules:\n" + textwrap.indent(textwrap.dedent(body), "  "))
    return path


def load(path: Path):
    return load_anomalies(path, path.name, operations=OPERATIONS, roles=ROLES, users=USERS)


def rules_from(tmp_path: Path, body: str) -> AnomalyRules:
    rules, errors = load(write_rules(tmp_path, body))
    assert rules is not None, [str(e) for e in errors]
    return rules


class CollectingSink:
    """A real AlertSink that keeps what it was given, in order."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    async def raise_alert(self, *, user, type, level, score, summary, evidence, rule, window, source="threshold"):
        self.alerts.append(
            {
                "user": user,
                "type": type,
                "level": level,
                "score": score,
                "summary": summary,
                "evidence": evidence,
                "rule": rule,
                "window": window,
                "source": source,
            }
        )
        return f"alert-{len(self.alerts)}"

    def rules(self) -> list[str]:
        return [a["rule"] for a in self.alerts]
