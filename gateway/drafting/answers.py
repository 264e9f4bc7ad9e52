"""Reading a response schema the way the catalogue needs it: records, related records, the rest.

A *record* is an object with an id (``id``, ``uuid`` or ``pk``). The schema is walked from the
body down; the walk stops at the first record on each branch, so records nested in records
(contacts inside a lead) are not mistaken for the endpoint's own. Each record found is a *place*::

    {"count": 3, "results": [Lead], "users": [Profile], "included": [Account]}
        -> results[] (Lead), users[] (Profile), included[] (Account)
    {"columns": [{"status": "new", "leads": [Lead]}]}     -> columns[].leads[] (Lead)
    {"lead": Lead, "related": [Lead]}                      -> lead (Lead), related[] (Lead)
    Lead                                                   -> $ (Lead)

Which places hold the endpoint's records is decided by the resource the path names (a place whose
schema component is that resource's) or, failing that, by there being only one kind of record.
What the answer carries besides is allow-listed conservatively: counts beside a record list are
recounted by the gateway (``aggregates``), request echoes (page, limit) are ``metadata``, other
records are ``related`` when they belong to a resource with endpoints of its own or carry an
owner. Everything else is left undeclared, so a restricted caller never receives it; the draft
names those keys in a comment. ``next`` / ``previous`` are left out on purpose: the CRM computes
them over records the caller may not see.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from gateway.drafting.naming import resource_for_component
from gateway.drafting.openapi import Spec

ID_FIELDS = ("id", "uuid", "pk")
# Record fields that say who a record belongs to: a record carrying one is scoped on its own.
OWNERISH = frozenset(
    {
        "owner",
        "owner_id",
        "owners",
        "assigned_to",
        "assignee",
        "assignee_id",
        "assignees",
        "user",
        "user_id",
        "team",
        "team_id",
        "teams",
        "created_by",
        "region",
        "department",
        "branch",
    }
)
COUNTS = frozenset({"count", "total", "total_count", "totalCount", "num_results", "total_results", "totalResults"})
ECHOES = frozenset({"page", "page_size", "pageSize", "per_page", "perPage", "limit", "offset", "page_number"})
PAGING = frozenset({"meta", "pagination", "paging", "page_info", "pageInfo"})  # objects holding the two above
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")  # what a field path segment may be
_DEPTH = 4


@dataclasses.dataclass(frozen=True)
class Place:
    path: str  # a field path: "$", "lead", "results[]", "columns[].leads[]"
    schema: Any  # the record's schema (a list's item)
    is_list: bool
    component: str | None
    parent: str  # the object holding it: "" for the body, "results" for results.items[]


@dataclasses.dataclass
class Answer:
    records: list[str] | None = None  # None: undecided, see ``reason``
    reason: str = ""
    ambiguous: bool = False  # records were found, but which are the endpoint's is not clear
    component: str | None = None  # the records' schema component
    schemas: list[Any] = dataclasses.field(default_factory=list)
    related: list[tuple[str, str, Any]] = dataclasses.field(default_factory=list)  # (path, resource, schema)
    aggregates: dict[str, str] = dataclasses.field(default_factory=dict)
    metadata: list[str] = dataclasses.field(default_factory=list)
    dropped: list[str] = dataclasses.field(default_factory=list)


def join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and prefix != "$" else name


def is_record(spec: Spec, schema: Any) -> bool:
    return spec.kind(schema) == "object" and any(f in spec.properties(schema) for f in ID_FIELDS)


def has_owner(spec: Spec, schema: Any) -> bool:
    return bool(OWNERISH & set(spec.properties(schema)))


def places(spec: Spec, schema: Any) -> list[Place]:
    """Every record the body holds, outermost first; ``$`` alone when the body is a record."""
    if is_record(spec, schema):
        return [Place("$", schema, False, spec.name_of(schema), "")]
    found: list[Place] = []
    _walk(spec, schema, "", 0, found)
    return found


def _walk(spec: Spec, schema: Any, prefix: str, depth: int, found: list[Place]) -> None:
    if depth > _DEPTH:
        return
    for name, raw in spec.properties(schema).items():
        if not _NAME.match(name):
            continue  # a field path cannot name it; it stays undeclared (dropped)
        kind = spec.kind(raw)
        if kind == "object":
            if is_record(spec, raw):
                found.append(Place(join(prefix, name), raw, False, spec.name_of(raw), prefix))
            else:
                _walk(spec, raw, join(prefix, name), depth + 1, found)
        elif kind == "array" and spec.kind(spec.items(raw)) == "object":
            item = spec.items(raw)
            if is_record(spec, item):
                found.append(Place(join(prefix, name) + "[]", item, True, spec.name_of(item), prefix))
            else:
                _walk(spec, item, join(prefix, name) + "[]", depth + 1, found)


def _kind_key(spec: Spec, place: Place) -> str:
    return place.component or f"inline:{id(spec.resolve(place.schema))}"


def read_answer(spec: Spec, schema: Any, want: str, resource: str | None, collections: set[str]) -> Answer:
    """The answer's records (``want``: "list", "one" or "any"), related records, counts and echoes."""
    found = places(spec, schema)
    candidates = [p for p in found if want == "any" or p.is_list == (want == "list")]
    if not candidates:
        what = "list of records (objects with an id)" if want == "list" else "record (an object with an id)"
        return Answer(reason=f"the answer holds no {what}")
    mine = [p for p in candidates if p.component and resource_for_component(p.component, collections) == resource]
    kinds = {_kind_key(spec, p) for p in (mine or candidates)}
    if len(kinds) > 1:
        listed = ", ".join(f"{p.path} ({p.component or 'inline'})" for p in candidates)
        return Answer(reason=f"several kinds of record in the answer: {listed}; which are the records?", ambiguous=True)
    key = kinds.pop()
    chosen = [p for p in candidates if _kind_key(spec, p) == key]
    if want == "one" and len(chosen) > 1:
        return Answer(
            reason=f"{len(chosen)} records in the answer ({', '.join(p.path for p in chosen)}): which one?",
            ambiguous=True,
        )
    records = [p.path for p in chosen]
    answer = Answer(records=records, component=chosen[0].component, schemas=[p.schema for p in chosen])
    own = resource_for_component(answer.component, collections) if answer.component else resource
    for p in found:
        if p in chosen:
            continue
        target = (
            own
            if _kind_key(spec, p) == key
            else (resource_for_component(p.component, collections) if p.component else None)
        )
        if target and (target == own or target in collections or has_owner(spec, p.schema)):
            answer.related.append((p.path, target, p.schema))
    for p in [*chosen, *(place for place in found if place.path in {r[0] for r in answer.related})]:
        answer.related += _nested(spec, p, collections, key)
    for p in chosen:
        if p.is_list and "[]" not in p.parent:
            _counts_and_echoes(spec, schema, p.parent, answer)
    used = {_top(path) for path in [*records, *(r[0] for r in answer.related), *answer.aggregates, *answer.metadata]}
    answer.dropped = [name for name in spec.properties(schema) if name not in used] if "$" not in records else []
    return answer


def _nested(spec: Spec, outer: Place, collections: set[str], own_key: str) -> list[tuple[str, str, Any]]:
    """Records inside records that carry an owner of their own (a lead's contacts): related."""
    out = []
    for name, raw in spec.properties(outer.schema).items():
        if not _NAME.match(name):
            continue
        many = spec.kind(raw) == "array"
        inner = spec.items(raw) if many else raw
        component = spec.name_of(inner)
        if not is_record(spec, inner) or not component or not has_owner(spec, inner):
            continue
        if component == own_key:
            continue  # a record of the same kind inside (a parent lead): rare, left to the admin
        path = join(outer.path, name) + ("[]" if many else "")
        out.append((path, resource_for_component(component, collections), inner))
    return out


def _counts_and_echoes(spec: Spec, body: Any, parent: str, answer: Answer, depth: int = 0) -> None:
    """Counts and request echoes beside a record list, or in its ``meta`` / ``pagination`` object."""
    holder = body
    for step in filter(None, parent.split(".")):
        holder = spec.properties(holder).get(step, {})
    for name, raw in spec.properties(holder).items():
        path = join(parent, name)
        kind = spec.kind(raw)
        if name in COUNTS and kind == "integer":
            answer.aggregates.setdefault(path, "count")
        elif name in ECHOES and kind in ("integer", "string"):
            if path not in answer.metadata:
                answer.metadata.append(path)
        elif name in PAGING and kind == "object" and not is_record(spec, raw) and depth == 0:
            _counts_and_echoes(spec, body, path, answer, depth + 1)


def _top(path: str) -> str:
    return path.split(".", 1)[0].removesuffix("[]")


def scalar_keys(spec: Spec, schema: Any) -> list[str]:
    """Top-level keys holding plain values or lists of them: what a write's record-less answer says."""
    out = []
    for name, raw in spec.properties(schema).items():
        kind = spec.kind(raw)
        if _NAME.match(name) and (
            kind in ("string", "integer", "number", "boolean")
            or (kind == "array" and spec.kind(spec.items(raw)) != "object")
        ):
            out.append(name)
    return out
