"""A draft operations.yaml from an OpenAPI 3.x document.

Every operation of the document becomes one endpoint entry: the path with typed parameters
(``{id:uuid}`` for ``format: uuid``, ``{id:int}`` for integers, ``{id}`` otherwise: a typed
parameter never swallows a literal like ``export``), the operation guessed from the method and
the path (gateway.drafting.naming), where the records are (gateway.drafting.answers), what a
write's body may carry, and the query parameters with their types and bounds. Every resource
named gets an entry whose ``scope`` is a TODO: who owns a record is never in an OpenAPI document.

Guesses err on the closed side: what the answer carries besides records is left undeclared
(dropped for restricted callers) unless it is a recounted count or a request echo; query
parameters that reshape answers (``fields``, ``expand``, ``include``) and custom actions
(``POST /leads/{id}/convert/``) are TODOs, not guesses.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from gateway.context.routes import TemplateError, parse_template
from gateway.context.todos import todo
from gateway.drafting import naming
from gateway.drafting.answers import (
    ID_FIELDS,
    OWNERISH,
    Answer,
    read_answer,
    scalar_keys,
)
from gateway.drafting.bodies import bulk_ids, read_body, read_query
from gateway.drafting.openapi import Operation, Spec
from gateway.drafting.render import catalogue_text

_WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclasses.dataclass
class Entry:
    """One endpoint of the draft, with the comment lines written above it."""

    data: dict[str, Any]
    comments: list[str]
    resource: str | None = None
    action: str | None = None
    item_key: str | None = None  # the GET template that reads this entry's record, untyped
    record_schemas: list[Any] = dataclasses.field(default_factory=list)
    related_schemas: list[Any] = dataclasses.field(default_factory=list)  # one per data["related"]


@dataclasses.dataclass
class Draft:
    source: str
    resources: dict[str, dict[str, Any]]
    entries: list[Entry]
    notes: list[str]


def untyped(template: str) -> str:
    """``/leads/{id:uuid}/`` -> ``/leads/{id}/``: how lookups name a GET template."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", template)


def typed_template(spec: Spec, op: Operation) -> tuple[str, str | None]:
    """The catalogue path of an operation, or (the path, why it cannot be one)."""
    params = {p.get("name"): p for p in op.parameters if p.get("in") == "path"}
    out = []
    for segment in naming.split_path(op.path):
        if not naming.is_param(segment):
            out.append(segment)
            continue
        name = segment[1:-1]
        schema = spec.resolve((params.get(name) or {}).get("schema"))
        kind = ":uuid" if schema.get("format") == "uuid" else ":int" if spec.kind(schema) == "integer" else ""
        safe = re.sub(r"\W", "_", name)
        out.append("{" + (safe if safe[:1].isalpha() or safe[:1] == "_" else f"p_{safe}") + kind + "}")
    text = "/" + "/".join(out) + ("/" if op.path.endswith("/") and out else "")
    try:
        parse_template(untyped(text))  # literals and parameter names; types are checked at load
    except TemplateError as exc:
        return op.path, f"{exc}: the catalogue matches whole segments only"
    return text, None


def _response(op: Operation) -> tuple[str | None, dict[str, Any]]:
    codes = sorted((c for c in op.responses if c[:1] == "2" or c == "2XX"), key=lambda c: (c != "200", c))
    return (codes[0], op.responses[codes[0]]) if codes else (None, {})


def _media(content: dict[str, Any]) -> tuple[str, Any]:
    """("json", schema) | ("csv", None) | ("other: <types>", None) | ("none", None)."""
    if not content:
        return "none", None
    for media, item in content.items():
        base = media.split(";")[0].strip().lower()
        if base == "application/json" or base.endswith("+json"):
            return "json", (item or {}).get("schema")
    if any(m.split(";")[0].strip().lower() == "text/csv" for m in content):
        return "csv", None
    return "other: " + ", ".join(content), None


def _want(method: str, shape: naming.PathShape) -> str:
    if method == "GET":
        return {"collection": "list", "item": "one"}.get(shape.ends, "any")
    if (shape.ends == "collection" and method == "POST") or shape.ends == "item":
        return "one"
    return "any"


def _action(method: str, shape: naming.PathShape, media: str, answer: Answer | None) -> tuple[str | None, str]:
    """(action, "") or (None, why it is left to the admin)."""
    if shape.admin:
        return "admin", ""
    word = naming.word_action(shape)
    if word:
        return word, ""
    if method == "GET" and media == "csv":
        return "export", ""
    by_method = naming.method_action(method, shape)
    if by_method:
        return by_method, ""
    if method == "GET" and answer is not None and answer.records:
        return ("list" if any(r.endswith("[]") for r in answer.records) else "view"), ""
    where = f"'{shape.word}' on one record" if shape.after_item else f"'{shape.word or shape.ends}'"
    if method == "GET" and media.startswith("other: "):
        return None, f"GET {where} answers {media[7:]}: which action is it (view, export, ...)?"
    if method == "GET":
        return None, f"GET {where}: no record list or record in the answer says whether it is list or view"
    return None, f"{method} {where} is a custom action: which action is it (update, create, delete, admin, ...)?"


def draft_from_openapi(spec: Spec) -> Draft:
    ops = spec.operations()
    shapes = {op.path: naming.shape(op.path) for op in ops}
    collections = {s.collection for s in shapes.values() if s.collection}
    entries = [_entry(spec, op, shapes[op.path], collections) for op in ops]
    _lookups(entries)
    notes = [f"unresolved $ref (bundle the document first): {ref}" for ref in sorted(spec.unresolved)]
    return Draft(f"{spec.file} ({spec.title}, OpenAPI {spec.version})", _resources(spec, entries), entries, notes)


def _entry(spec: Spec, op: Operation, shape: naming.PathShape, collections: set[str]) -> Entry:
    path, path_problem = typed_template(spec, op)
    comments = [f"{op.method} {op.path}" + (f" ({op.operation_id})" if op.operation_id else "")]
    code, response = _response(op)
    media, schema = _media(response.get("content") or {})
    answer = (
        read_answer(spec, schema, _want(op.method, shape), shape.collection, collections) if media == "json" else None
    )
    resource = "admin" if shape.admin else shape.collection
    if answer is not None and answer.component and not shape.admin:
        resource = naming.resource_for_component(answer.component, collections)
    action, why = _action(op.method, shape, media, answer)
    data: dict[str, Any] = {"method": op.method, "path": todo(path_problem) if path_problem else path}
    if action and resource:
        data["operation"] = f"{resource}.{action}"
    else:
        data["operation"] = todo(why or f"no resource name in {op.path!r}")
    data["records"] = _records(op, code, media, answer)
    if media == "csv":
        data["format"] = "csv"
    entry = Entry(data, comments, resource, action, record_schemas=answer.schemas if answer else [])
    if shape.ends == "item" or shape.after_item:
        segments = path.rstrip("/").split("/")
        item = segments if shape.ends == "item" else segments[:-1]
        entry.item_key = untyped("/".join(item) + ("/" if path.endswith("/") else ""))
    if op.request_body is not None and op.method in _WRITES:
        body, notes = read_body(spec, op.request_body)
        data["body"] = body
        comments += notes
        if action in ("update", "delete") and shape.ends != "item" and not shape.after_item:
            data["ids_from_body"] = bulk_ids(spec, op.request_body)
    elif action in ("update", "delete") and shape.ends != "item" and not shape.after_item:
        data["ids_from_body"] = todo("a bulk write without a body: where are the ids of the records it changes?")
    query, notes = read_query(spec, op.parameters)
    if query:
        data["query"] = query
    comments += notes
    if answer is not None and answer.records:
        if answer.related:
            data["related"] = [{"path": p, "resource": r} for p, r, _ in answer.related]
            entry.related_schemas = [s for _, _, s in answer.related]
        if answer.aggregates:
            data["aggregates"] = dict(answer.aggregates)
        if answer.metadata:
            data["metadata"] = list(answer.metadata)
        if answer.dropped:
            comments.append("left undeclared, so dropped for restricted callers: " + ", ".join(answer.dropped))
    elif answer is not None and data["records"] == [] and op.method in _WRITES:
        keys = scalar_keys(spec, schema)
        if keys:
            data["metadata"] = keys
    if media == "csv":  # an OpenAPI document describes a CSV answer as a string: no headers to read
        data["columns"] = todo(
            'which record field each CSV header holds ({"Phone Number": phone}: masks on '
            "phone follow it); {} when the headers are the field names"
        )
        data["csv_scope"] = todo(
            "which CSV column holds the owner / team of a row for each scope level "
            "({own: {column: ..., identity: ...}}); {} when the scope fields are columns"
        )
    return entry


def _records(op: Operation, code: str | None, media: str, answer: Answer | None) -> Any:
    if media == "csv":
        return ["$"]
    if answer is not None:
        if answer.records is not None:
            return answer.records
        if op.method in _WRITES and not answer.ambiguous:
            return []  # a write that answers with a summary, not a record
        return todo(f'{answer.reason} (records: [] when the answer holds none, ["$"] when the body is one record)')
    if media == "none":
        if op.method in _WRITES or code == "204":
            return []
        return todo(f"no response content described for {code or 'any 2xx status'}")
    if media.startswith("other"):
        return todo(
            f"the {code} answer is {media[7:]}: the draft reads JSON and CSV answers only; declare "
            f"its format and records by hand, or records: [] if it holds none"
        )
    return todo("no JSON schema for the answer")


def _lookups(entries: list[Entry]) -> None:
    """update / delete entries read their record first: the GET of the same item, or for a bulk
    write the resource's one-parameter GET."""
    gets = {untyped(e.data["path"]): e for e in entries if e.data["method"] == "GET" and e.action == "view"}
    for e in entries:
        if e.data["method"] == "GET" or (e.action not in ("update", "delete") and e.action is not None):
            continue
        if e.item_key is not None:
            target = gets.get(e.item_key)
            if target is not None:
                e.data["lookup"] = e.item_key
            elif e.action is not None:
                e.data["lookup"] = todo(f"no GET {e.item_key} in the document reads the record before it changes")
            continue
        if e.action is None:
            continue
        views = sorted(
            (
                k
                for k, g in gets.items()
                if g.resource == e.resource and k.count("{") == 1 and k.rstrip("/").endswith("}")
            ),
            key=len,
        )
        e.data["lookup"] = (
            views[0]
            if views
            else todo(f"no GET with one id parameter reads a {e.resource} record before this bulk write")
        )


def _resources(spec: Spec, entries: list[Entry]) -> dict[str, dict[str, Any]]:
    names: dict[str, tuple[list[Any], list[str]]] = {}
    for e in entries:
        if e.resource:
            schemas, writable = names.setdefault(e.resource, ([], []))
            schemas += e.record_schemas
            body = e.data.get("body")
            if isinstance(body, dict) and isinstance(body.get("writable"), list):
                writable += body["writable"]
        for related, schema in zip(e.data.get("related", []), e.related_schemas):
            names.setdefault(related["resource"], ([], []))[0].append(schema)
    return {name: _resource(spec, name, schemas, writable) for name, (schemas, writable) in sorted(names.items())}


def _resource(spec: Spec, name: str, schemas: list[Any], writable: list[str]) -> dict[str, Any]:
    fields: list[str] = []
    for schema in schemas:
        fields += [f for f in spec.properties(schema) if f not in fields]
    out: dict[str, Any] = {}
    id_field = next((f for f in ID_FIELDS if f in fields), None)
    if id_field is None and fields:
        id_field = todo(f"no id / uuid / pk field in the {name} records: which field is the id?")
    out["id_field"] = id_field or "id"  # no schema at all: the catalogue's default
    out["scope"] = todo(
        f"which {name} fields decide each scope level (own: {{field: ..., identity: ...}}, team: "
        f"...); {_candidates(spec, schemas)}; {{}} if only callers with scope all use {name}"
    )
    if fields:
        out["fields"] = fields
    mixed = [f for f in fields if f != f.lower()]
    if mixed:
        out["case_insensitive"] = todo(
            f"field names with capitals ({', '.join(mixed)}): masks name fields exactly; "
            f"true makes Phone and phone one field, and aliases ({{phone: [mobilePhone]}}) "
            f"cover other spellings; false if masks need neither"
        )
    owners = [k for k in dict.fromkeys(writable) if k in OWNERISH or "owner" in k or "assign" in k or "team" in k]
    if owners:
        out["writes"] = todo(
            f"bodies write {', '.join(owners)}: say how they name people (writes.people: ids, "
            f"objects) and teams (writes.org), and missing_owner if the CRM assigns the caller"
        )
    return out


def _candidates(spec: Spec, schemas: list[Any]) -> str:
    found: list[str] = []
    for schema in schemas:
        for field, raw in spec.properties(schema).items():
            if field not in OWNERISH or any(c.startswith(field) for c in found):
                continue
            kind = spec.kind(raw)
            inner = spec.items(raw) if kind == "array" else raw
            suffix = "[]" if kind == "array" else ""
            keys = [k for k in ("id", "email", "name") if k in spec.properties(inner)]
            found += [f"{field}{suffix}.{k}" for k in keys] if keys else [field + suffix]
    return f"candidates: {', '.join(found)}" if found else "no owner-like field in the schema"


HEADER = (
    'Every "TODO: <reason>" value is a decision the draft could not make: `crmgw rules check` refuses',
    "the catalogue while one is left. Everything else is a guess to check: each operation, where the",
    "records are, and what each endpoint lets a restricted caller send and receive (rules/README.md).",
)


def draft_text(spec: Spec) -> str:
    """The draft catalogue of an OpenAPI document, as operations.yaml text."""
    draft = draft_from_openapi(spec)
    header = [f"Draft catalogue from {draft.source}, by `crmgw catalogue draft`.", *HEADER, *draft.notes]
    return catalogue_text(header, draft.resources, [(e.comments, e.data) for e in draft.entries])
