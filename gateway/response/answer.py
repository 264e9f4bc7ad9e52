"""A JSON answer as a restricted caller may receive it: records, and only what the catalogue declares.

A CRM answers with more than records: CRM-wide counts (``"count": 301`` for a rep who sees 7),
totals over everyone's deals, side lists of users with e-mail addresses, sideloaded ``included``
records, records nested inside records. Each of those is a leak unless it is declared, so for a
caller whose scope is not ``all`` (or who has masks) the answer is rebuilt from the endpoint's
answer contract (gateway.declared.AnswerContract):

    records      filtered by scope (a single out-of-scope record refuses the answer), capped by
                 ``max_records`` (refused, or truncated), masked, trimmed to the resource's
                 ``fields``; a record reached under two keys is counted once
    related      each place filtered and masked as its own resource, at the same scope level
                 (withheld whole when that resource has no field for the level)
    aggregates   ``count`` recomputed from what is left, ``sum`` recomputed (withheld when the
                 field is masked or not a number), ``withhold`` removed
    metadata     kept as the CRM sent it
    the rest     dropped; or, with ``undeclared: refuse``, the whole answer is refused (502)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from gateway import fieldpath
from gateway.declared import Aggregate
from gateway.errors import Forbidden, ObligationUnenforceable
from gateway.model import Endpoint, Identity, Obligations, Resource
from gateway.response.mask import CompiledMask, mask_records, spellings
from gateway.response.paths import compiled
from gateway.response.scope import scope_test

ALL = None  # a pruning-tree node under which everything is kept
PruningTree = dict[str, "PruningTree | None"]  # the declared keys of an answer, ALL below a leaf


@dataclasses.dataclass(slots=True)
class Outcome:
    seen: int  # distinct records in the CRM's answer
    returned: list[dict[str, Any]]  # distinct records left for the caller
    ids: tuple[str, ...]  # their ids, taken before masks (an id may itself be masked)
    masked: set[str]


def record_key(record: dict[str, Any], id_field: str) -> Any:
    """What makes two copies of a record one record: its id, else the object itself."""
    value = record.get(id_field)
    return ("id", value) if type(value) in (str, int) else ("object", id(record))


def distinct(records: Iterable[dict[str, Any]], id_field: str) -> list[dict[str, Any]]:
    records = records if type(records) is list else list(records)
    # Why the first pass: a CRM's page of records nearly always has a distinct string or integer
    # id on each, and then the answer is the list itself; checking that at C speed (sets, map)
    # costs a third of building a key per record. ``1`` and ``"1"`` stay apart, as in record_key.
    ids = [record.get(id_field) for record in records]
    if set(map(type, ids)) <= _ID_TYPES and len(set(ids)) == len(ids):
        return list(records)
    out: dict[Any, dict[str, Any]] = {}
    for record in records:
        out.setdefault(record_key(record, id_field), record)
    return list(out.values())


_ID_TYPES = {str, int}  # ``type(...) is``: not bool, not float (record_key's test)


def restrict(
    doc: Any,
    places: list[Any],
    endpoint: Endpoint,
    obligations: Obligations,
    identity: Identity,
    masks: tuple[CompiledMask, ...],
    directory: Any = None,
) -> Outcome:
    """Filter ``doc`` in place; ``places`` are the record lists and single records of ``endpoint.records``."""
    resource, contract = endpoint.resource, endpoint.answer
    id_field = resource.id_field
    all_records = _records_in(places)
    returned = distinct(all_records, id_field)
    seen = len(returned)
    in_scope = scope_test(resource, obligations.scope, identity, directory)
    if in_scope is not None:  # else every record stays: ``returned`` is already what is left
        for place in places:
            if type(place) is list:
                place[:] = [record for record in place if in_scope(record)]
            elif not in_scope(place):
                raise Forbidden(
                    "record-out-of-scope",
                    detail=f"{resource.name} record {place.get(id_field)!r} is outside scope {obligations.scope!r}",
                )
        all_records = _records_in(places)
        returned = distinct(all_records, id_field)
    cap = contract.max_records
    if cap is not None and len(returned) > cap.limit:
        if cap.over == "refuse":
            raise Forbidden("too-many-records", detail=f"{len(returned)} records > {cap.limit}")
        keep = {record_key(r, id_field) for r in returned[: cap.limit]}
        for place in places:
            if type(place) is list:
                place[:] = [r for r in place if record_key(r, id_field) in keep]
        returned = returned[: cap.limit]
        all_records = _records_in(places)
    ids = tuple([str(v) for r in returned if (v := r.get(id_field)) is not None and v != ""])
    masked: set[str] = set()
    for related in contract.related:
        masked |= _related(doc, related.path, related.resource, obligations.scope, identity, masks, directory)
    # every record of every place as it is now (a record under two keys twice); a related place
    # may be one of the record lists (filtered in place just above), so then read them again
    copies = _records_in(places) if contract.related else all_records
    masked |= mask_records(copies, masks, resource)
    trim_fields(copies, resource)
    for aggregate in contract.aggregates:
        _aggregate(doc, aggregate, returned, masks, resource)
    removed = prune(doc, pruning_tree(endpoint))
    if removed and contract.undeclared == "refuse":
        raise ObligationUnenforceable(detail=f"{endpoint.operation}: {removed} undeclared value(s) in the answer")
    return Outcome(seen, returned, ids, masked)


def _records_in(places: list[Any]) -> list[dict[str, Any]]:
    """Every record of the places, in order: the lists' items and the single records."""
    out: list[dict[str, Any]] = []
    for place in places:
        if type(place) is list:
            out += place
        else:
            out.append(place)
    return out


def _related(
    doc: Any,
    path_text: str,
    resource: Resource,
    scope: str,
    identity: Identity,
    masks: tuple[CompiledMask, ...],
    directory: Any,
) -> set[str]:
    """Filter, mask and trim the records of one related place; returns the masks that hit.

    A related resource that cannot decide the caller's scope level (contacts with an ``own`` field
    only, read by a team-scoped manager) keeps none of its records: they are withheld, while the
    answer's own records still go out.
    """
    test = (
        scope_test(resource, scope, identity, directory) if scope == "all" or scope in resource.scope_fields else _none
    )
    path = compiled(path_text)
    kept: list[dict[str, Any]] = []
    if path[-1][1]:  # "included[]": lists of records
        holder = path[:-1] + ((path[-1][0], False),)
        for records in list(fieldpath.values(doc, holder)):
            if records is None:
                continue
            if type(records) is not list or any(type(r) is not dict for r in records):
                raise ObligationUnenforceable(detail=f"related {path_text!r} is not a list of records")
            if test is not None:
                records[:] = [r for r in records if test(r)]
            kept += records
    else:  # "lead.account": one record in place
        for parent, key in list(fieldpath.containers(doc, path)):
            record = parent[key]
            if record is None:
                continue
            if type(record) is not dict:
                raise ObligationUnenforceable(detail=f"related {path_text!r} is not a record")
            if test is not None and not test(record):
                del parent[key]
            else:
                kept.append(record)
    masked = mask_records(kept, masks, resource)
    trim_fields(kept, resource)
    return masked


def _none(record: Any) -> bool:
    return False


def trim_fields(records: list[dict[str, Any]], resource: Resource) -> None:
    """Drop the keys a resource does not declare in ``fields`` (when it declares any)."""
    allowed = resource.fields
    if allowed is None:
        return
    fold = resource.case_insensitive
    for record in records:
        for key in [k for k in record if (k.casefold() if fold else k) not in allowed]:
            del record[key]


def _aggregate(
    doc: Any, aggregate: Aggregate, returned: list[dict[str, Any]], masks: tuple[CompiledMask, ...], resource: Resource
) -> None:
    path = compiled(aggregate.path)
    places = list(fieldpath.containers(doc, path))
    if not places:
        return
    value: Any = None
    if aggregate.op == "count":
        value = len(returned)
    elif aggregate.op == "sum" and aggregate.field is not None and not _masked(aggregate.field, masks, resource):
        numbers = [r.get(aggregate.field) for r in returned]
        if all(type(n) in (int, float) for n in numbers if n is not None):
            value = sum(n for n in numbers if n is not None)
    for parent, key in places:
        if value is None:
            del parent[key]  # withheld: nothing computed over records the caller may not see
        else:
            parent[key] = value


def _masked(field: str, masks: tuple[CompiledMask, ...], resource: Resource) -> bool:
    for mask in masks:
        names = spellings(resource, mask.path[-1][0])
        if mask.field == field or (
            names is not None and (field.casefold() if resource.case_insensitive else field) in names
        ):
            return True
    return False


# Built trees by endpoint. Why: an answer's tree depends on its endpoint alone and was rebuilt
# for every answer. Endpoints are not hashable (they hold mappings), so the key is the object's
# id and the entry keeps the endpoint itself: an id is only reused once its object is gone, and
# the entry's own reference keeps that from happening while the entry exists. Read-only trees.
_TREES: dict[int, tuple[Endpoint, PruningTree | None]] = {}
_MAX_TREES = 1024  # endpoints of the catalogues in use (a reload brings new ones): emptied when full


def pruning_tree(endpoint: Endpoint) -> PruningTree | None:
    """The declared shape of an answer: records, related, aggregates, metadata; ALL below each.
    Shared between answers: never modify it."""
    found = _TREES.get(id(endpoint))
    if found is not None and found[0] is endpoint:
        return found[1]
    tree = build_pruning_tree(endpoint)
    if len(_TREES) >= _MAX_TREES:
        _TREES.clear()
    _TREES[id(endpoint)] = (endpoint, tree)
    return tree


def build_pruning_tree(endpoint: Endpoint) -> PruningTree | None:
    """:func:`pruning_tree` without the cache."""
    texts = [
        *endpoint.records,
        *(r.path for r in endpoint.answer.related),
        *(a.path for a in endpoint.answer.aggregates),
        *endpoint.answer.metadata,
    ]
    root: PruningTree = {}
    for text in texts:
        steps = compiled(text)
        if not steps:
            return ALL  # "$": the body is a record
        node = root
        for i, (key, _walk) in enumerate(steps):
            if i == len(steps) - 1:
                node[key] = ALL
            elif key in node and node[key] is ALL:
                break
            else:
                child = node.get(key)
                if child is None:
                    child = node[key] = {}
                node = child
    return root


def prune(value: Any, node: PruningTree | None) -> int:
    """Remove from ``value`` what the tree does not declare; returns how many values went."""
    if node is ALL:
        return 0
    removed = 0
    if type(value) is dict:
        for key in list(value):
            if key not in node or (node[key] is not ALL and type(value[key]) not in (dict, list)):
                del value[key]
                removed += 1
            else:
                removed += prune(value[key], node[key])
    elif type(value) is list:
        before = len(value)
        value[:] = [item for item in value if type(item) in (dict, list)]
        removed += before - len(value) + sum(prune(item, node) for item in value)
    return removed
