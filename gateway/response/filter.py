"""Enforce a Decision's obligations on a CRM response body: drop out-of-scope records, mask fields.

    body ─► decode Content-Encoding (bounded) ─► check Content-Type ─► parse (orjson / csv / xmldoc)
         ─► locate records (Endpoint.records) ─► scope ─► ids ─► masks ─► re-encode (uncompressed)

Records are located with the catalogue's field paths: ``$`` is the body itself (one record; for CSV:
every row), ``data[]`` every item of ``body["data"]``, ``contact`` the object at ``body["contact"]``.
A list path keeps the list in place and removes the records out of scope; a single-record path
refuses the whole response with ``Forbidden("record-out-of-scope")`` instead, as there is nothing
left to send. Everything else in a JSON answer goes through gateway.response.answer: related
records, aggregates and metadata as declared, the rest dropped. An XML answer is read as the same
kind of tree (gateway.response.xmldoc: ``Envelope.Body.GetLeadsResponse.lead[]``) and goes the same way.

Fail closed: a body whose records are not where the catalogue says (missing list, a record that is not
an object) or that cannot be decoded or parsed raises ``ObligationUnenforceable`` rather than going
out unfiltered. The caller must drop ``Content-Encoding`` and set ``Content-Length`` from the result,
and should only filter successful (2xx) responses: an error body is not a record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from gateway import fieldpath
from gateway.errors import ObligationUnenforceable
from gateway.model import Endpoint, Identity, Obligations, Resource
from gateway.response import answer, formats, xmldoc
from gateway.response.mask import CompiledMask, compile_masks, mask_table
from gateway.response.paths import compiled, has_list_step
from gateway.response.scope import InScope, scope_fields, scope_test
from gateway.response.stream_ndjson import NdjsonStreamFilter


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
    directory: Any = None,
) -> FilterResult:
    """The body the caller may see; raises ObligationUnenforceable or Forbidden (single record).

    ``directory``: the users directory, for scope fields decided by membership (``member_of``)."""
    plain = formats.decode_content(body, content_encoding, max_bytes)
    if not plain:  # nothing to filter (a 204, a HEAD)
        return FilterResult(plain, content_type or "", 0, 0, (), frozenset())
    masks = compile_masks(tuple(obligations.masks))
    formats.check_media_type(content_type, endpoint.format)
    if not endpoint.records:  # an answer without records: only its declared metadata goes out
        doc, dump = _parse(plain, endpoint)
        removed = answer.prune(doc, answer.pruning_tree(endpoint) or {})
        if removed and endpoint.answer.undeclared == "refuse":
            raise ObligationUnenforceable(detail=f"{endpoint.operation}: undeclared values in the answer")
        return FilterResult(dump(), content_type or "", 0, 0, (), frozenset())
    id_field = endpoint.resource.id_field

    if endpoint.format == "csv":
        table = formats.load_csv(plain)
        seen = len(table.rows)
        in_scope = csv_scope_test(endpoint, obligations.scope, identity, directory)
        if in_scope is not None:
            table.rows = [row for row in table.rows if in_scope(row)]
        names = {header: column.field for header, column in endpoint.csv_columns.items()}
        id_column = next((h for h, n in names.items() if n == id_field), id_field)
        ids = _ids(table.rows, id_column)
        masked = mask_table(table, masks, endpoint.resource, names)
        _trim_columns(table, endpoint.resource, names)
        return FilterResult(formats.dump_csv(table), content_type or "", seen, len(table.rows), ids, frozenset(masked))

    if endpoint.format == "ndjson":
        return _ndjson(plain, content_type, endpoint, obligations, identity, max_bytes, directory)

    doc, dump = _parse(plain, endpoint, masks)
    outcome = answer.restrict(doc, _locate(doc, endpoint), endpoint, obligations, identity, masks, directory)
    return FilterResult(
        dump(),
        content_type or "",
        outcome.seen,
        len(outcome.returned),
        outcome.ids,
        frozenset(outcome.masked),
    )


def _ndjson(
    plain: bytes,
    content_type: str | None,
    endpoint: Endpoint,
    obligations: Obligations,
    identity: Identity | None,
    max_bytes: int,
    directory: Any,
) -> FilterResult:
    """A whole NDJSON body through the streamed filter (gateway.response.stream_ndjson), in one piece:
    the buffered answer (an HTTP/1.0 client, a restricted caller's error answer) reads as the stream."""
    lines = NdjsonStreamFilter(endpoint, obligations, identity, max_pending=max_bytes, directory=directory)
    body = lines.feed(plain) + lines.finish()
    ids = tuple(lines.ids)
    return FilterResult(body, content_type or "", lines.seen, lines.returned, ids, frozenset(lines.fields_masked()))


def _parse(plain: bytes, endpoint: Endpoint, masks: tuple[CompiledMask, ...] = ()) -> tuple[Any, Callable[[], bytes]]:
    """The answer as plain data and how to write it back once filtered: JSON as it is, XML as the
    dict tree of gateway.response.xmldoc, its lists read from the catalogue's paths."""
    if endpoint.format != "xml":
        doc = formats.load_json(plain)
        return doc, lambda: formats.dump_json(doc)
    xml = formats.load_xml(plain)
    _xml_lists(xml, endpoint, masks)
    return xml.root, lambda: formats.dump_xml(xml)


def _xml_lists(xml: xmldoc.XmlDocument, endpoint: Endpoint, masks: tuple[CompiledMask, ...]) -> None:
    """Read as lists the elements a ``[]`` step names: in the answer's own paths, then inside each
    record along its resource's scope fields and the masks. XML cannot tell one ``<lead>`` from a
    list of one, nor an absent list from an empty one; the catalogue can."""
    places = [(endpoint.records, endpoint.resource), *(((r.path,), r.resource) for r in endpoint.answer.related)]
    for texts, _ in places:
        for text in texts:
            xml.shape(xml.root, compiled(text), records=True)
    for text in (*endpoint.answer.metadata, *(a.path for a in endpoint.answer.aggregates)):
        xml.shape(xml.root, compiled(text))
    for texts, resource in places:
        fields = [f for fs in resource.scope_fields.values() for f in (fs if isinstance(fs, tuple) else (fs,))]
        inner = [compiled(f.path) for f in fields] + [m.path for m in masks]
        for text in texts:
            for record in list(fieldpath.values(xml.root, compiled(text))):
                for path in inner:
                    xml.shape(record, path)


def csv_scope_test(endpoint: Endpoint, scope: str, identity: Identity | None, directory: Any = None) -> InScope | None:
    """The row test for a CSV answer: the endpoint's own scope column (a header, maybe multi-valued),
    else the resource's scope field, which must then be a top-level column."""
    field = endpoint.csv_scope.get(scope) if scope != "all" else None
    if field is None:
        _check_csv_paths(endpoint, scope)
        return scope_test(endpoint.resource, scope, identity, directory)
    wanted = identity.user.attribute(field.identity) if identity is not None else None
    column, sep = field.path, field.split
    if not wanted:
        return lambda row: False

    def test(row: dict[str, str]) -> bool:
        cell = row.get(column) or ""
        return wanted in ([v.strip() for v in cell.split(sep)] if sep else [cell])

    return test


def _trim_columns(table: formats.CsvTable, resource: Resource, names: dict[str, str]) -> None:
    """Drop the columns whose field the resource does not declare in ``fields``."""
    if resource.fields is None:
        return
    fold = resource.case_insensitive
    table.columns = [c for c in table.columns if ((n := names.get(c, c)).casefold() if fold else n) in resource.fields]


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
    if endpoint.format == "ndjson":  # counted by the same reading that filters it; sent as it came
        counted = _ndjson(plain, content_type, endpoint, Obligations(), identity, max_bytes, None)
        return dataclasses.replace(counted, body=plain)
    if endpoint.format == "csv":
        _check_csv_paths(endpoint, "all")
        records: list[Any] = formats.load_csv(plain).rows
    else:
        records = records_of(_parse(plain, endpoint)[0], endpoint)
        records = answer.distinct(records, endpoint.resource.id_field)  # one record under two keys is one
    ids = _ids(records, endpoint.resource.id_field)
    return FilterResult(plain, content_type or "", len(records), len(records), ids, frozenset())


def records_of(body_obj: Any, endpoint: Endpoint) -> list[dict[str, Any]]:
    """The records a parsed JSON body holds, in the order of ``endpoint.records``."""
    out: list[dict[str, Any]] = []
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
                if records and set(map(type, records)) != _DICT_ONLY:  # C speed: one pass per record list
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


_DICT_ONLY = {dict}


def _check_csv_paths(endpoint: Endpoint, scope: str) -> None:
    """CSV rows are flat: records are the rows ("$") and only top-level columns can decide scope."""
    if tuple(endpoint.records) != ("$",):
        raise _unenforceable(endpoint, f"CSV records must be '$', not {list(endpoint.records)}")
    for field in scope_fields(endpoint.resource, scope) or ():
        if fieldpath.first_segment(compiled(field.path)) is None:
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
