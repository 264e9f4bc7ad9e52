"""Loading the contracts of rules/operations.yaml (see gateway.declared for what each one means).

A resource may declare::

    fields: [id, title, amount, assigned_to, Phone]   # all a restricted caller may receive
    aliases: {phone: [Phone, mobilePhone]}            # masks on ``phone`` follow every spelling
    case_insensitive: true
    writes:
      people:
        - {fields: [assigned_to, owner, owner_id], ids: [crm_profile_id, email],
           objects: {id: crm_profile_id, email: email}}
      org:
        - {fields: [teams], level: team, references: teams}
      missing_owner: {crm_assigns: caller, via: identity_header}

and an endpoint::

    body: {media: [json, form], writable: [title, amount, assigned_to], writable_by_role: {...}}
    query: {page: {type: int, min: 1}, limit: {type: int, min: 1, max: 100}}
    related: [{path: "included[]", resource: accounts}]
    aggregates: {count: count, totals.amount_sum: {sum: amount}, totals.by_status: withhold}
    metadata: [next, previous]
    undeclared: drop            # or refuse: a 502 rather than a silently trimmed answer
    max_records: {limit: 100, over: refuse}
    columns: {"Assigned to": {field: assigned_to, split: ";"}}   # CSV headers
    csv_scope: {own: {column: "Assigned to", identity: email}}

Everything is parsed strictly (unknown keys are errors) and problems come back as (path, message)
pairs for the catalogue loader to turn into ``file:line:col`` errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from gateway import fieldpath
from gateway.context.routes import PARAM_TYPES
from gateway.declared import (
    MEDIA,
    Aggregate,
    AnswerContract,
    BodyContract,
    CsvColumn,
    MaxRecords,
    OrgField,
    PeopleField,
    QueryParam,
    Related,
    WriteContract,
)
from gateway.model import ScopeField
from gateway.rulefile import StrictModel

Problem = tuple[tuple[Any, ...], str]
# The scope levels a record field decides (``all`` needs none).
ScopedLevel = Literal["own", "team", "department", "region", "branch"]
Media = Literal["json", "form", "multipart", "xml"]  # as gateway.declared.MEDIA
_JSON: list[Media] = ["json"]


class PeopleSpec(StrictModel):
    fields: list[str] = Field(min_length=1)
    ids: list[str] = Field(default_factory=list)
    objects: dict[str, str] = Field(default_factory=dict)


class OrgSpec(StrictModel):
    fields: list[str] = Field(min_length=1)
    level: Literal["team", "department", "region", "branch"]
    references: str | None = None


class MissingOwnerSpec(StrictModel):
    crm_assigns: Literal["caller"]
    via: Literal["identity_header"]


class WritesSpec(StrictModel):
    people: list[PeopleSpec] = Field(default_factory=list)
    org: list[OrgSpec] = Field(default_factory=list)
    missing_owner: MissingOwnerSpec | None = None


class BodySpec(StrictModel):
    media: list[Media] = Field(default_factory=lambda: _JSON.copy())
    records: list[str] = Field(default_factory=lambda: ["$"])
    writable: list[str] = Field(default_factory=list)
    writable_by_role: dict[str, list[str]] = Field(default_factory=dict)


class QuerySpec(StrictModel):
    type: Literal["int", "string", "bool", "enum"] = "string"
    min: int | None = None
    max: int | None = None
    max_length: int = Field(200, ge=1, le=8192)
    values: list[str] = Field(default_factory=list)


class RelatedSpec(StrictModel):
    path: str
    resource: str


class SumSpec(StrictModel):
    sum: str


class MaxRecordsSpec(StrictModel):
    limit: int = Field(ge=1)
    over: Literal["refuse", "truncate"] = "refuse"


class ColumnSpec(StrictModel):
    field: str
    split: str | None = None


class CsvScopeSpec(StrictModel):
    column: str
    identity: str
    split: str | None = None


class ReferencesSpec(StrictModel):
    level: Literal["team", "department", "region", "branch"]
    ids: dict[str, str]


def _path_ok(where: tuple[Any, ...], text: str, problems: list[Problem], what: str) -> bool:
    try:
        fieldpath.parse(text)
        return True
    except fieldpath.FieldPathError as exc:
        problems.append((where, f"{what}: {exc}"))
        return False


def writes(spec: WritesSpec, where: tuple[Any, ...], references: set[str], problems: list[Problem]) -> WriteContract:
    seen: dict[str, int] = {}
    people = []
    for i, p in enumerate(spec.people):
        if not p.ids and not p.objects:
            problems.append((where + ("people", i), "a people field needs 'ids' or 'objects' (how a person is named)"))
        people.append(PeopleField(tuple(p.fields), tuple(p.ids), dict(p.objects)))
        for name in p.fields:
            seen[name] = seen.get(name, 0) + 1
    org = []
    for i, o in enumerate(spec.org):
        if o.references is not None and o.references not in references:
            problems.append((where + ("org", i, "references"), f"unknown references map {o.references!r}"))
        org.append(OrgField(tuple(o.fields), o.level, o.references))
        for name in o.fields:
            seen[name] = seen.get(name, 0) + 1
    for name, count in seen.items():
        if count > 1:
            problems.append((where, f"body key {name!r} is declared more than once in people/org"))
    missing = spec.missing_owner
    return WriteContract(
        tuple(people), tuple(org), missing.crm_assigns if missing else None, missing.via if missing else None
    )


def body(spec: BodySpec, where: tuple[Any, ...], problems: list[Problem]) -> BodyContract:
    for j, text in enumerate(spec.records):
        _path_ok(where + ("records", j), text, problems, "records")
    if "xml" in spec.media:  # a call (SOAP): gateway.response.xmlcall
        if spec.media != ["xml"] or any(t == "$" or "[]" in t for t in spec.records):
            problems.append(
                (
                    where + ("media",),
                    "an xml body is a call: media [xml] alone, and records naming "
                    'one element each from the root, e.g. "Envelope.Body.GetLeads"',
                )
            )
        _nested_calls(spec.records, where + ("records",), problems)
    elif any(m != "json" for m in spec.media) and spec.records != ["$"]:
        problems.append((where + ("records",), 'form and multipart bodies hold one record: records must be ["$"]'))
    return BodyContract(
        media=tuple(dict.fromkeys(spec.media)) or MEDIA[:1],
        records=tuple(spec.records),
        writable=frozenset(spec.writable),
        writable_by_role={role: frozenset(keys) for role, keys in spec.writable_by_role.items()},
    )


def _nested_calls(records: list[str], where: tuple[Any, ...], problems: list[Problem]) -> None:
    """Each declared call of an xml body must lie outside every other: gateway.response.xmlcall
    reads an element either as a call or as the way to one, never both, so a call declared inside
    another (``A.B`` and ``A.B.C``) or twice could not be checked at request time (it would be a
    500 for every caller). Refused here, naming both calls; element names as xmlcall compares them."""
    seen: list[tuple[int, str, tuple[str, ...]]] = []
    for j, text in enumerate(records):
        try:
            names = tuple(key for key, _ in fieldpath.parse(text))
        except fieldpath.FieldPathError:
            continue  # reported by _path_ok
        for i, other_text, other in seen:
            if names == other:
                problems.append((where + (j,), f"call {text!r} is declared twice (also records[{i}])"))
                break
            outer, inner = (other_text, text) if len(other) < len(names) else (text, other_text)
            if names[: len(other)] == other or other[: len(names)] == names:
                problems.append(
                    (
                        where + (j,),
                        f"call {inner!r} lies inside call {outer!r} (records[{i}] and records[{j}]): "
                        "a call cannot hold another call",
                    )
                )
                break
        seen.append((j, text, names))


def query(spec: dict[str, QuerySpec], where: tuple[Any, ...], problems: list[Problem]) -> dict[str, QueryParam]:
    out = {}
    for name, q in spec.items():
        if q.type == "enum" and not q.values:
            problems.append((where + (name,), "an enum parameter needs 'values'"))
        if q.type != "enum" and q.values:
            problems.append((where + (name, "values"), "'values' is only for type enum"))
        if q.type != "int" and (q.min is not None or q.max is not None):
            problems.append((where + (name,), "'min'/'max' are only for type int"))
        if q.min is not None and q.max is not None and q.min > q.max:
            problems.append((where + (name,), f"min {q.min} > max {q.max}"))
        out[name] = QueryParam(name, q.type, q.min, q.max, q.max_length, tuple(q.values))
    return out


def answer(spec: Any, where: tuple[Any, ...], resources: dict[str, Any], problems: list[Problem]) -> AnswerContract:
    """The answer contract from an endpoint spec's related / aggregates / metadata / undeclared / max_records."""
    related = []
    for i, r in enumerate(spec.related):
        _path_ok(where + ("related", i, "path"), r.path, problems, "related path")
        if r.resource not in resources:
            problems.append((where + ("related", i, "resource"), f"unknown resource {r.resource!r}"))
        else:
            related.append(Related(r.path, resources[r.resource]))
    aggregates = []
    for path, op in spec.aggregates.items():
        if not _path_ok(where + ("aggregates", path), path, problems, "aggregate path"):
            continue
        if "[]" in path:
            problems.append((where + ("aggregates", path), "an aggregate is one value: no [] in its path"))
        aggregates.append(Aggregate(path, "sum", op.sum) if isinstance(op, SumSpec) else Aggregate(path, op))
    metadata = [
        text for j, text in enumerate(spec.metadata) if _path_ok(where + ("metadata", j), text, problems, "metadata")
    ]
    cap = spec.max_records
    return AnswerContract(
        related=tuple(related),
        aggregates=tuple(aggregates),
        metadata=tuple(metadata),
        undeclared=spec.undeclared,
        max_records=MaxRecords(cap.limit, cap.over) if cap else None,
    )


def columns(spec: dict[str, ColumnSpec | str]) -> dict[str, CsvColumn]:
    return {header: CsvColumn(c) if isinstance(c, str) else CsvColumn(c.field, c.split) for header, c in spec.items()}


def csv_scope(spec: Mapping[ScopedLevel, CsvScopeSpec]) -> dict[str, ScopeField]:
    return {level: ScopeField(path=s.column, identity=s.identity, split=s.split) for level, s in spec.items()}


def patterns(spec: dict[str, str], problems: list[Problem]) -> dict[str, re.Pattern[str]]:
    """The catalogue's named path-parameter patterns, each matched against a whole segment."""
    out = {}
    for name, text in spec.items():
        where = ("patterns", name)
        if name in PARAM_TYPES or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            problems.append((where, f"pattern name {name!r} must be a name other than {', '.join(PARAM_TYPES)}"))
            continue
        try:
            compiled = re.compile(text)
        except re.error as exc:
            problems.append((where, f"pattern {name!r}: {exc}"))
            continue
        if compiled.fullmatch("") or any(compiled.fullmatch(c) for c in ("/", "?", "#", ".", "..")):
            problems.append((where, f"pattern {name!r} matches an empty segment or '/', '?', '#', '.', '..'"))
            continue
        out[name] = compiled
    return out
