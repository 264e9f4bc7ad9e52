"""Enforce a Decision's obligations on a CRM response body: drop out-of-scope records, mask fields.

    body ─► decode Content-Encoding (bounded) ─► check Content-Type ─► parse (orjson / csv)
         ─► locate records (Endpoint.records) ─► scope ─► ids ─► masks ─► re-encode (uncompressed)

Records are located with the catalogue's field paths: ``$`` is the body itself (one record; for CSV:
every row), ``data[]`` every item of ``body["data"]``, ``contact`` the object at ``body["contact"]``.
A list path keeps the list in place and removes the records out of scope (pagination fields and the
rest of the body are left alone); a single-record path refuses the whole response with
``Forbidden("record-out-of-scope")`` instead, as there is nothing left to send.

Fail closed: a body whose records are not where the catalogue says (missing list, a record that is not
an object) or that cannot be decoded or parsed raises ``ObligationUnenforceable`` rather than going
out unfiltered. The caller must drop ``Content-Encoding`` and set ``Content-Length`` from the result,
and should only filter successful (2xx) responses: an error body is not a record.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway import fieldpath
from gateway.errors import Forbidden, ObligationUnenforceable
from gateway.model import Endpoint, Identity, Obligations
from gateway.response import formats
from gateway.response.mask import compile_masks, mask_records, mask_table
from gateway.response.paths import compiled, has_list_step
from gateway.response.scope import scope_field, scope_test


@dataclasses.dataclass(frozen=True, slots=True)
class FilterResult:
    body: bytes  # plain (uncompressed) body to send
    content_type: str
    records_seen: int  # records in the CRM's answer
    records_returned: int  # records left after scope filtering
    record_ids: tuple[str, ...]  # ids of the returned records (for distinct-record counts)
    fields_masked: frozenset[str]  # mask field paths that changed at least one record


def apply_obligations(
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    endpoint: Endpoint,
    obligations: Obligations,
    identity: Identity,
    max_bytes: int,
) -> FilterResult:
    """The body the caller may see; raises ObligationUnenforceable or Forbidden (single record)."""
    plain = formats.decode_content(body, content_encoding, max_bytes)
    if not endpoint.records or not plain:  # no records in this answer: nothing to filter
        return FilterResult(plain, content_type or "", 0, 0, (), frozenset())
    in_scope = scope_test(endpoint.resource, obligations.scope, identity)
    masks = compile_masks(tuple(obligations.masks))
    formats.check_media_type(content_type, endpoint.format)
    id_field = endpoint.resource.id_field

    if endpoint.format == "csv":
        _check_csv_paths(endpoint, obligations.scope)
        table = formats.load_csv(plain)
        seen = len(table.rows)
        if in_scope is not None:
            table.rows = [row for row in table.rows if in_scope(row)]
        ids = _ids(table.rows, id_field)
        masked = mask_table(table, masks)
        return FilterResult(
            formats.dump_csv(table), content_type or "", seen, len(table.rows), ids, frozenset(masked)
        )

    doc = formats.load_json(plain)
    places = _locate(doc, endpoint)
    seen = sum(len(p) if type(p) is list else 1 for p in places)
    returned: list[dict] = []
    for place in places:
        if type(place) is list:
            if in_scope is not None:
                place[:] = [record for record in place if in_scope(record)]
            returned.extend(place)
        else:
            if in_scope is not None and not in_scope(place):
                raise Forbidden(
                    "record-out-of-scope",
                    detail=f"{endpoint.resource.name} record {place.get(id_field)!r} is outside "
                    f"scope {obligations.scope!r}",
                )
            returned.append(place)
    ids = _ids(returned, id_field)  # before masks: an id may itself be masked
    masked = mask_records(returned, masks)
    return FilterResult(
        formats.dump_json(doc), content_type or "", seen, len(returned), ids, frozenset(masked)
    )


def count_records(
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    endpoint: Endpoint,
    identity: Identity | None = None,
    max_bytes: int,
) -> FilterResult:
    """Count the records of an unfiltered answer (for the records_read/exported signals).

    ``body`` of the result is the decoded body, byte for byte (not re-encoded). Raises
    ObligationUnenforceable like :func:`apply_obligations` when the body cannot be read; the caller
    decides whether an uncountable answer may pass.
    """
    plain = formats.decode_content(body, content_encoding, max_bytes)
    if not endpoint.records or not plain:
        return FilterResult(plain, content_type or "", 0, 0, (), frozenset())
    formats.check_media_type(content_type, endpoint.format)
    if endpoint.format == "csv":
        _check_csv_paths(endpoint, "all")
        records: list[Any] = formats.load_csv(plain).rows
    else:
        records = records_of(formats.load_json(plain), endpoint)
    ids = _ids(records, endpoint.resource.id_field)
    return FilterResult(plain, content_type or "", len(records), len(records), ids, frozenset())


def records_of(body_obj: Any, endpoint: Endpoint) -> list[dict]:
    """The records a parsed JSON body holds, in the order of ``endpoint.records``."""
    out: list[dict] = []
    for place in _locate(body_obj, endpoint):
        if type(place) is list:
            out.extend(place)
        else:
            out.append(place)
    return out


def _locate(doc: Any, endpoint: Endpoint) -> list[Any]:
    """Each record list (to filter in place) and each single record, per records path.

    A path without an inner ``[]`` addresses one place, which must exist: when the CRM moves its
    records elsewhere the filter must refuse, not pass them through unseen.
    """
    places: list[Any] = []
    seen_lists: set[int] = set()
    for text in endpoint.records:
        path = compiled(text)
        if path and path[-1][1]:  # "data[]": the list itself is the place
            holder = path[:-1] + ((path[-1][0], False),)
            found = list(fieldpath.values(doc, holder))
            if not found and not has_list_step(path[:-1]):
                raise _unenforceable(endpoint, f"no record list at {text!r}")
            for records in found:
                if type(records) is not list:
                    raise _unenforceable(endpoint, f"{text!r} is not a list")
                if any(type(record) is not dict for record in records):
                    raise _unenforceable(endpoint, f"a record at {text!r} is not an object")
                if id(records) not in seen_lists:
                    seen_lists.add(id(records))
                    places.append(records)
        else:  # "$" or "contact": one record
            found = list(fieldpath.values(doc, path))
            if not found and not has_list_step(path):
                raise _unenforceable(endpoint, f"no record at {text!r}")
            for record in found:
                if type(record) is not dict:
                    raise _unenforceable(endpoint, f"the record at {text!r} is not an object")
                places.append(record)
    return places


def _check_csv_paths(endpoint: Endpoint, scope: str) -> None:
    """CSV rows are flat: records are the rows ("$") and only top-level columns can decide scope."""
    if tuple(endpoint.records) != ("$",):
        raise _unenforceable(endpoint, f"CSV records must be '$', not {list(endpoint.records)}")
    field = scope_field(endpoint.resource, scope)
    if field is not None and fieldpath.first_segment(compiled(field.path)) is None:
        raise _unenforceable(endpoint, f"scope field {field.path!r} cannot apply to CSV columns")


def _ids(records: list[Any], id_field: str) -> tuple[str, ...]:
    out = []
    for record in records:
        value = record.get(id_field)
        if value is not None and value != "":
            out.append(str(value))
    return tuple(out)


def _unenforceable(endpoint: Endpoint, detail: str) -> ObligationUnenforceable:
    return ObligationUnenforceable(detail=f"{endpoint.operation}: {detail}")
