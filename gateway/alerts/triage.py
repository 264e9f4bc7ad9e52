"""Bulk triage: one analyst action applied to many alerts (the console's queue and incidents).

Each alert goes through ``AlertStore.transition`` on its own, so every change is journalled (fsync)
with the analyst and the time in that alert's history, exactly like a single action, and shared
through Redis. One alert refused (already closed, gone, lost a race ten times) does not stop the
others: the result lists what was done and why each refusal happened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING

from gateway.alerts.model import AlertNotFound, InvalidTransition, OwnAlert

if TYPE_CHECKING:
    from gateway.alerts.store import AlertStore

MAX_BULK = 500  # one form post; a bigger selection is several pages anyway
# action -> status (None: an assignment only, or the verdict decides)
BULK_ACTIONS: dict[str, str | None] = {"ack": "acknowledged", "assign": None, "resolve": None}


@dataclasses.dataclass
class BulkResult:
    done: list[str] = dataclasses.field(default_factory=list)
    refused: dict[str, str] = dataclasses.field(default_factory=dict)  # alert id -> why (words)
    codes: dict[str, str] = dataclasses.field(default_factory=dict)  # alert id -> why (a fixed code)


def check_bulk(action: str, ids: list[str], verdict: str | None) -> None:
    """Raises ValueError for a request that cannot be applied to any alert."""
    if action not in BULK_ACTIONS:
        raise ValueError(f"unknown bulk action {action!r} (one of {', '.join(BULK_ACTIONS)})")
    if not ids:
        raise ValueError("select at least one alert")
    if len(ids) > MAX_BULK:
        raise ValueError(f"at most {MAX_BULK} alerts at once")
    if action == "resolve" and not verdict:
        raise ValueError("resolving needs a verdict")


async def bulk_triage(
    store: AlertStore,
    ids: Iterable[str],
    *,
    actor: str,
    action: str,
    assignee: str | None = None,
    verdict: str | None = None,
    determination: str | None = None,
    note: str | None = None,
) -> BulkResult:
    """Apply ``action`` to every alert in ``ids`` (duplicates once); raises ValueError for a bad request."""
    unique = list(dict.fromkeys(i for i in ids if i))
    check_bulk(action, unique, verdict)
    result = BulkResult()
    for alert_id in unique:
        try:
            await store.transition(
                alert_id,
                actor=actor,
                status=BULK_ACTIONS[action],
                assignee=assignee if action == "assign" else None,
                note=note,
                verdict=verdict if action == "resolve" else None,
                determination=determination if action == "resolve" else None,
            )
        except AlertNotFound:
            result.refused[alert_id], result.codes[alert_id] = "no such alert", "alert-unknown"
        except OwnAlert as exc:  # before ValueError: it is one
            result.refused[alert_id], result.codes[alert_id] = str(exc), OwnAlert.reason
        except InvalidTransition as exc:  # before ValueError: it is one
            result.refused[alert_id], result.codes[alert_id] = str(exc), "transition-invalid"
        except ValueError as exc:
            result.refused[alert_id], result.codes[alert_id] = str(exc), "action-invalid"
        else:
            result.done.append(alert_id)
    return result
