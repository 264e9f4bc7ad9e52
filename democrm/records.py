"""Turning request bodies and CSV rows into records: field types, owners, defaults.

Legacy-CRM leniency on purpose: unknown fields are ignored, PUT is a partial update like PATCH,
and explicit team/department/region/branch values in a body are kept even when they disagree with
the owner's (the gateway, not the CRM, must stop a client from planting records elsewhere). What is
checked is what would corrupt the store: types, enums, the shape of people references.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from democrm.seed import CUSTOMER_STATUSES, DEAL_STAGES, DIRECTORY, ORG_FIELDS, org_of, person_ref
from democrm.store import TABLES

READ_ONLY = frozenset({"id", "created_at", "updated_at"})
ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("customers", "status"): CUSTOMER_STATUSES,
    ("deals", "stage"): DEAL_STAGES,
}
DEFAULTS: dict[tuple[str, str], Any] = {("customers", "status"): "lead", ("deals", "stage"): "lead"}
OWNER_FIELD = {"customers": "owner_id", "contacts": "owner", "deals": "assigned_to"}


class InvalidRecord(ValueError):
    """A body or CSV row the CRM cannot store; the message is shown to the client."""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _person(value: Any, field: str) -> dict[str, str]:
    if isinstance(value, str) and value:
        return person_ref(value)
    if isinstance(value, Mapping) and isinstance(value.get("id"), str) and value["id"]:
        email = value.get("email", f"{value['id']}@example.com")
        if not isinstance(email, str):
            raise InvalidRecord(f"{field}.email must be a string")
        return {"id": value["id"], "email": email}
    raise InvalidRecord(f"{field} must be a user id or an object with an id")


def _coerce(table: str, name: str, value: Any) -> Any:
    kind = TABLES[table][name]
    if name == "owner":
        return _person(value, name)
    if name == "assigned_to":
        if not isinstance(value, list) or not value:
            raise InvalidRecord("assigned_to must be a non-empty list")
        return [_person(item, "assigned_to[]") for item in value]
    if kind == "str":
        if not isinstance(value, str):
            raise InvalidRecord(f"{name} must be a string")
        allowed = ENUMS.get((table, name))
        if allowed is not None and value not in allowed:
            raise InvalidRecord(f"{name} must be one of {', '.join(allowed)}")
        if name == "owner_id" and not value:
            raise InvalidRecord("owner_id must not be empty")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidRecord(f"{name} must be a finite number")
        return float(value)
    if kind == "int":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
            raise InvalidRecord(f"{name} must be a positive integer")
        return value
    raise InvalidRecord(f"{name} cannot be written")  # pragma: no cover - every column kind is handled


def coerce_fields(table: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The writable known fields of ``body``, type-checked; everything else is ignored."""
    return {
        name: _coerce(table, name, value)
        for name, value in body.items()
        if name in TABLES[table] and name not in READ_ONLY
    }


def owner_id(table: str, fields: Mapping[str, Any]) -> str | None:
    value = fields.get(OWNER_FIELD[table])
    if table == "customers":
        return value
    if table == "contacts":
        return value["id"] if value else None
    return value[0]["id"] if value else None


def for_create(table: str, body: Mapping[str, Any], acting_user: str | None) -> dict[str, Any]:
    """A complete new record: the body's fields, the owner, the owner's org fields, defaults."""
    fields = coerce_fields(table, body)
    owner_field = OWNER_FIELD[table]
    if owner_field not in fields:
        if acting_user is None:
            raise InvalidRecord(f"{owner_field} is required when no acting user is known (send X-CRM-User)")
        fields[owner_field] = {"customers": acting_user, "contacts": person_ref(acting_user)}.get(
            table, [person_ref(acting_user)]
        )
    org = org_of(owner_id(table, fields) or "")
    for name in ORG_FIELDS:
        fields.setdefault(name, org[name])
    for name, kind in TABLES[table].items():
        if name not in fields and name not in READ_ONLY:
            fields[name] = DEFAULTS.get((table, name), {"str": "", "float": 0.0}.get(kind))
    if table == "customers":
        fields["created_at"] = fields["updated_at"] = now_iso()
    return fields


def for_update(table: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The changes a PUT/PATCH makes. A new known owner brings their org fields along."""
    changes = coerce_fields(table, body)
    if OWNER_FIELD[table] in changes:
        new_owner = owner_id(table, changes)
        if new_owner in DIRECTORY:
            org = org_of(new_owner)
            for name in ORG_FIELDS:
                changes.setdefault(name, org[name])
    if table == "customers" and changes:
        changes["updated_at"] = now_iso()
    return changes


def customers_from_csv(text: str, acting_user: str | None) -> list[dict[str, Any]]:
    """Every row of an imported CSV as a new customer; any bad row refuses the whole file."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames
    if not header:
        raise InvalidRecord("CSV import needs a header row")
    unknown = [name for name in header if name not in TABLES["customers"]]
    if unknown:
        raise InvalidRecord(f"unknown CSV columns: {', '.join(unknown)}")
    if len(set(header)) != len(header):
        raise InvalidRecord("CSV header repeats a column")
    records = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise InvalidRecord(f"line {line}: more values than columns")
        cells = {name: value for name, value in row.items() if value}  # empty cell = not given
        try:
            if "quote_price" in cells:
                cells["quote_price"] = float(cells["quote_price"])
            record = for_create("customers", cells, acting_user)
        except (InvalidRecord, ValueError) as problem:
            raise InvalidRecord(f"line {line}: {problem}") from None
        for stamp in ("created_at", "updated_at"):  # an export re-imported keeps its history
            if stamp in cells:
                record[stamp] = cells[stamp]
        records.append(record)
    return records
