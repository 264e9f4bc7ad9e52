"""Field masks: remove, redact or hash a field in every record returned to the caller.

    remove   delete the key (for CSV: drop the column, header and cells)
    redact   "*" for every character but the last ``keep_last`` (all stars when keep_last is 0 or
             the value is that short); the length is kept, as on a printed statement
    hash     "hmac:" + the first 16 hex digits of HMAC-SHA256(key, value): a stable pseudonym that
             still lets an analyst see that two records share a value. Keyed, because a plain hash
             of a phone number or an email is reversed by trying every candidate; the key comes from
             the environment variable the settings name in ``mask_key_env`` (default CRMGW_MASK_KEY;
             32+ characters; set the same value on every instance and worker for pseudonyms that
             agree everywhere), read when the gateway starts (``use_key_from_env``), else a random
             key per process.

Values that are not strings are masked through their JSON text (``123`` -> ``"123"``, ``true`` ->
``"true"``), so a number in JSON and the same number in a CSV cell give the same pseudonym. A null
has nothing to hide and stays null. A mask whose field is absent is not an error: the caller learns
which fields were actually masked (``fields_masked``) for the audit line.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from gateway import fieldpath
from gateway.errors import ObligationUnenforceable
from gateway.model import Mask, Resource
from gateway.response.formats import CsvTable
from gateway.response.paths import compiled


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledMask:
    field: str
    op: str
    keep_last: int
    path: fieldpath.Path
    column: str | None  # the top-level key, when the path is one plain segment


def redact(value: Any, keep_last: int = 0) -> str:
    text = _text(value)
    shown = keep_last if 0 < keep_last < len(text) else 0
    return "*" * (len(text) - shown) + (text[-shown:] if shown else "")


MIN_KEY = 32
MASK_KEY = secrets.token_bytes(32)  # until the gateway starts with its settings (use_key_from_env)


def use_key_from_env(variable: str) -> bool:
    """Use the key in ``$variable`` for ``hash`` masks (a random one when unset); True when it was set.

    A key shorter than 32 characters is refused with a ValueError naming the variable.
    """
    global MASK_KEY
    configured = os.environ.get(variable, "")
    if configured and len(configured) < MIN_KEY:
        raise ValueError(f"mask_key_env: ${variable} must be at least {MIN_KEY} characters long")
    MASK_KEY = configured.encode("utf-8") if configured else secrets.token_bytes(32)
    return bool(configured)


def pseudonym(value: Any, key: bytes | None = None) -> str:
    digest = hmac.new(key or MASK_KEY, _text(value).encode("utf-8"), hashlib.sha256).hexdigest()
    return "hmac:" + digest[:16]


def _text(value: Any) -> str:
    return value if type(value) is str else orjson.dumps(value).decode("utf-8")


@functools.lru_cache(maxsize=512)
def compile_masks(masks: tuple[Mask, ...]) -> tuple[CompiledMask, ...]:
    """Parse and check each mask once per distinct obligation set."""
    out = []
    for mask in masks:
        if mask.op not in ("remove", "redact", "hash"):
            raise ObligationUnenforceable(detail=f"unknown mask op {mask.op!r}")
        if mask.keep_last < 0:
            raise ObligationUnenforceable(detail=f"mask {mask.field!r}: keep_last must not be negative")
        path = compiled(mask.field)
        # "$" or a path ending in "[]" names no field: such a mask would silently mask nothing.
        if not path or path[-1][1]:
            raise ObligationUnenforceable(detail=f"mask field {mask.field!r} does not name a field")
        out.append(CompiledMask(mask.field, mask.op, mask.keep_last, path, fieldpath.first_segment(path)))
    return tuple(out)


def _changer(mask: CompiledMask) -> Callable[[Any], Any]:
    if mask.op == "hash":
        return pseudonym
    keep = mask.keep_last
    return lambda value: redact(value, keep)


def spellings(resource: Resource | None, field: str) -> frozenset[str] | None:
    """Every spelling of a field's last segment the resource declares (folded when case-insensitive),
    or None when the field has only its own, exact name (the fast path)."""
    if resource is None or (not resource.case_insensitive and field not in resource.aliases):
        return None
    names = {field, *resource.aliases.get(field, ())}
    return frozenset(n.casefold() for n in names) if resource.case_insensitive else frozenset(names)


def mask_records(
    records: Iterable[dict[str, Any]], masks: tuple[CompiledMask, ...], resource: Resource | None = None
) -> set[str]:
    """Apply ``masks`` in place to JSON records; returns the field paths that were masked.

    With a resource that declares aliases or case-insensitive fields, a mask on ``phone`` also
    masks ``Phone`` and ``mobilePhone`` (the last segment of a nested path likewise).
    """
    masked: set[str] = set()
    records = records if isinstance(records, list) else list(records)
    fold = resource is not None and resource.case_insensitive
    for mask in masks:
        hit = False
        change = None if mask.op == "remove" else _changer(mask)  # None: remove the field
        names = spellings(resource, mask.path[-1][0])
        if names is not None:
            hit = _mask_spellings(records, mask, names, fold, change)
        elif mask.column is not None:  # fast path: a top-level key
            hit = _mask_column(records, mask.column, mask, change)
        else:
            for record in records:
                for parent, key in list(fieldpath.containers(record, mask.path)):
                    hit = True
                    if change is None:
                        del parent[key]
                    elif parent[key] is not None:
                        parent[key] = change(parent[key])
        if hit:
            masked.add(mask.field)
    return masked


def _mask_column(
    records: list[dict[str, Any]], key: str, mask: CompiledMask, change: Callable[[Any], Any] | None
) -> bool:
    """One top-level key in every record; True when some record had it.

    Why the three loops: this runs for every record of every masked answer, and a call per value
    (``change`` -> ``redact`` -> ``_text``) cost more than the masking itself; the redaction of a
    string is inlined here (the same text as :func:`redact`).
    """
    hit = False
    if change is None:
        for record in records:
            if key in record:
                hit = True
                del record[key]
    elif mask.op == "redact":
        keep = mask.keep_last
        for record in records:
            if key in record:
                hit = True
                value = record[key]
                if type(value) is str:
                    shown = keep if 0 < keep < len(value) else 0
                    record[key] = "*" * (len(value) - shown) + value[-shown:] if shown else "*" * len(value)
                elif value is not None:
                    record[key] = redact(value, keep)
    else:
        for record in records:
            if key in record:
                hit = True
                value = record[key]
                if value is not None:
                    record[key] = change(value)
    return hit


def _mask_spellings(
    records: list[dict[str, Any]],
    mask: CompiledMask,
    names: frozenset[str],
    fold: bool,
    change: Callable[[Any], Any] | None,
) -> bool:
    hit = False
    head = mask.path[:-1]
    for record in records:
        parents = fieldpath.values(record, head) if head else (record,)
        for parent in list(parents):
            if not isinstance(parent, dict):
                continue
            for key in [k for k in parent if (k.casefold() if fold else k) in names]:
                hit = True
                if change is None:
                    del parent[key]
                elif parent[key] is not None:
                    parent[key] = change(parent[key])
    return hit


def mask_table(
    table: CsvTable,
    masks: tuple[CompiledMask, ...],
    resource: Resource | None = None,
    fields: Mapping[str, str] | None = None,
) -> set[str]:
    """Apply ``masks`` in place to a CSV table; nested paths cannot name a column.

    ``fields`` maps a header to the field name it stands for (``"Phone Number"`` -> ``phone``); other
    headers are their own field names. Aliases and case-insensitivity apply as for JSON records.
    """
    masked: set[str] = set()
    fields = fields or {}
    for mask in masks:
        if mask.column is None:
            raise ObligationUnenforceable(detail=f"mask field {mask.field!r} cannot apply to CSV columns")
        names = spellings(resource, mask.column)
        fold = resource is not None and resource.case_insensitive
        targets = []
        for header in table.columns:
            name = fields.get(header, header)
            if (name == mask.column) if names is None else ((name.casefold() if fold else name) in names):
                targets.append(header)
        for column in targets:
            if mask.op == "remove":
                # Rows keep the cell but dump_csv writes only the listed columns.
                table.columns = [c for c in table.columns if c != column]
                masked.add(mask.field)
                continue
            change = _changer(mask)
            for row in table.rows:
                row[column] = change(row[column])
            if table.rows:
                masked.add(mask.field)
    return masked
