"""Turning request bodies into realistic-profile records: owners, teams, defaults, escalation.

What a real CRM does that the gateway must cope with, on purpose:

* owners arrive as bare profile UUIDs or e-mails, as objects, as a single string or a list, and
  under the aliases ``owner`` / ``owner_id`` (used only when ``assigned_to`` names nobody);
* a body that names no assignee is assigned to the caller (``X-CRM-User``), who is also
  ``created_by`` (read-only: a ``created_by`` in the body is ignored, like every unknown key);
* ``teams`` not given (or empty) are derived from the assignees; given ones are kept as given,
  even when they disagree with the assignees (legacy leniency; stopping that is the gateway's job);
* escalation: a lead whose title holds the word "escalate" is re-assigned by the CRM itself to the
  manager of the other sales team, so a write can land out of the writer's scope after the
  gateway let it through. A lead already with a sales manager stays put (no ping-pong).

Errors are DRF-shaped: ``InvalidBody({field: [message]})``, all problems of a body at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from democrm.realistic.bodies import InvalidBody
from democrm.realistic.people import (
    ESCALATE_TO,
    PROFILES,
    SALES_MANAGERS,
    derived_teams,
    profile_brief,
    profile_ref,
    team_of,
    team_of_reference,
    team_ref,
    user_of_profile,
    user_of_reference,
)
from democrm.realistic.seed import LEAD_STATUSES
from democrm.realistic.store import RealisticStore
from democrm.seed import DIRECTORY

ESCALATES = re.compile(r"\bescalate\b", re.IGNORECASE)
ASSIGNEE_FIELDS = ("assigned_to", "owner", "owner_id")  # in order of precedence
Errors = dict[str, list[str]]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _items(value: Any) -> list[Any]:
    """A list field's items: a single value counts as a list of one; blank strings are nothing."""
    items = value if isinstance(value, list) else [] if value is None else [value]
    return [item for item in items if not (isinstance(item, str) and not item.strip())]


def _resolved(field: str, value: Any, resolve: Callable[[Any], str | None], errors: Errors) -> list[str]:
    names = []
    for item in _items(value):
        name = resolve(item)
        if name is None:
            errors.setdefault(field, []).append(f'Invalid pk "{_shown(item)}" - object does not exist.')
        else:
            names.append(name)
    return list(dict.fromkeys(names))


def _assignee_errors(errors: Errors) -> bool:
    return any(field in errors for field in ASSIGNEE_FIELDS)


def named_assignees(body: dict[str, Any], errors: Errors) -> list[str] | None:
    """The directory users the body assigns, or None when it names nobody."""
    for field in ASSIGNEE_FIELDS:
        if field in body:
            users = _resolved(field, body[field], user_of_reference, errors)
            if users or field in errors:
                return users
    return None


def named_teams(body: dict[str, Any], errors: Errors) -> list[dict[str, str]] | None:
    teams = _resolved("teams", body.get("teams"), team_of_reference, errors)
    return [team_ref(team) for team in teams] if teams or "teams" in errors else None


# -- scalar fields ------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError("Not a valid string.")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("A valid number is required.")
    try:
        number = float(value)
    except ValueError:
        raise ValueError("A valid number is required.") from None
    if not math.isfinite(number):
        raise ValueError("A valid number is required.")
    return number


def _status(value: Any) -> str:
    if not isinstance(value, str) or value not in LEAD_STATUSES:
        raise ValueError(f'"{_shown(value)}" is not a valid choice.')
    return value


def _account_ref(store: RealisticStore) -> Callable[[Any], str | None]:
    def account(value: Any) -> str | None:
        value = value.get("id") if isinstance(value, dict) else value
        if value is None or value == "":
            return None
        if not isinstance(value, str) or store.get("accounts", value) is None:
            raise ValueError(f'Invalid pk "{_shown(value)}" - object does not exist.')
        return value

    return account


def _scalars(resource: str, body: dict[str, Any], store: RealisticStore, errors: Errors) -> dict[str, Any]:
    """The writable scalar fields the body gives, type-checked; unknown keys are ignored."""
    kinds: dict[str, Callable[[Any], Any]] = (
        {
            "title": _text,
            "amount": _number,
            "status": _status,
            "account": _account_ref(store),
            "Phone": _text,
            "mobilePhone": _text,
            "email": _text,
            "quote_price": _number,
        }
        if resource == "leads"
        else {"name": _text, "phone": _text, "industry": _text, "annual_revenue": _number}
    )
    fields = {}
    for name, convert in kinds.items():
        if name in body:
            try:
                fields[name] = convert(body[name])
            except ValueError as problem:
                errors.setdefault(name, []).append(str(problem))
    label = "title" if resource == "leads" else "name"
    if label in fields and not fields[label].strip():
        errors.setdefault(label, []).append("This field may not be blank.")
    return fields


# -- escalation ---------------------------------------------------------------------------------


def escalation_target(record: dict[str, Any]) -> str | None:
    """Who the CRM hands an escalated lead to, or None (no "escalate", or already a manager's)."""
    if not ESCALATES.search(record["title"]) or not record["assigned_to"]:
        return None
    first = user_of_profile(record["assigned_to"][0]["id"])
    if first is None or first in SALES_MANAGERS:
        return None
    return ESCALATE_TO.get(team_of(first))


def _escalate(resource: str, record: dict[str, Any]) -> dict[str, Any]:
    target = escalation_target(record) if resource == "leads" else None
    if target is not None:
        record["assigned_to"] = [profile_ref(target)]
        record["teams"] = derived_teams([target])
    return record


# -- create and update --------------------------------------------------------------------------


def new_record(resource: str, body: dict[str, Any], caller: str | None, store: RealisticStore) -> dict[str, Any]:
    """A complete record for a create, as it will be stored and listed. Raises InvalidBody."""
    errors: Errors = {}
    fields = _scalars(resource, body, store, errors)
    label = "title" if resource == "leads" else "name"
    if label not in fields and label not in errors:
        errors[label] = ["This field is required."]
    caller = caller if caller in DIRECTORY else None
    users = named_assignees(body, errors) or ([caller] if caller else [])
    if not users and not _assignee_errors(errors):
        errors["assigned_to"] = ["This field is required."]  # nobody named, and no caller to default to
    teams = named_teams(body, errors)
    if errors:
        raise InvalidBody(errors)
    owners = {"assigned_to": [profile_ref(user) for user in users], "teams": teams or derived_teams(users)}
    if resource == "accounts":
        return {
            "id": store.new_id(),
            "name": fields["name"],
            "created_by": profile_brief(caller) if caller else None,
            **owners,
            "phone": fields.get("phone", ""),
            "industry": fields.get("industry", ""),
            "annual_revenue": fields.get("annual_revenue"),
        }
    record = {
        "id": store.new_id(),
        "title": fields["title"],
        "amount": fields.get("amount", 0.0),
        "status": fields.get("status", "assigned"),
        "created_by": PROFILES[caller] if caller else None,
        **owners,
        "account": fields.get("account"),
        "Phone": fields.get("Phone", ""),
        "mobilePhone": fields.get("mobilePhone", ""),
        "email": fields.get("email", ""),
        "quote_price": fields.get("quote_price"),
        "contacts": [],
        "created_at": now_iso(),
    }
    return _escalate(resource, record)


def updated_record(
    resource: str, record: dict[str, Any], body: dict[str, Any], store: RealisticStore
) -> dict[str, Any]:
    """``record`` after a PATCH/PUT (both partial). Raises InvalidBody; ``record`` is not changed."""
    errors: Errors = {}
    changed = {**record, **_scalars(resource, body, store, errors)}
    if any(field in body for field in ASSIGNEE_FIELDS):
        users = named_assignees(body, errors)
        if not users and not _assignee_errors(errors):
            errors["assigned_to"] = ["This list may not be empty."]
    else:
        users = None
    teams = named_teams(body, errors)
    if errors:
        raise InvalidBody(errors)
    if users:
        changed["assigned_to"] = [profile_ref(user) for user in users]
    if teams is not None:
        changed["teams"] = teams
    elif users:
        changed["teams"] = derived_teams(users)  # a new assignee brings their team along
    return _escalate(resource, changed)


def bulk_ids(body: dict[str, Any]) -> list[str]:
    ids = body.get("ids")
    ids = [ids] if isinstance(ids, str) else ids
    if not isinstance(ids, list) or not ids or not all(isinstance(item, str) for item in ids):
        raise InvalidBody({"ids": ["Expected a non-empty list of ids."]})
    return list(dict.fromkeys(ids))
