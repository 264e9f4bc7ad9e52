"""What a request may carry, from an OpenAPI operation: the body's media and keys, query parameters.

The catalogue allow-lists both for restricted callers, so the draft writes what the document
describes and nothing more: the keys of the request schema that are not ``readOnly``, the media
types the gateway can read (json, form, multipart: others are refused 415 when undeclared), and
each query parameter with the type and bounds its schema gives. Parameters that reshape the answer
(``fields``, ``expand``, ``include``, ...) are TODOs: they can pull in or leave out the very fields
scope and masks work on, so declaring them is the admin's decision.
"""

from __future__ import annotations

from typing import Any

from gateway.context.todos import todo
from gateway.drafting.openapi import Spec

_MEDIA = {"application/json": "json", "application/x-www-form-urlencoded": "form", "multipart/form-data": "multipart"}
RESHAPING = frozenset(
    {
        "fields",
        "expand",
        "include",
        "embed",
        "select",
        "$select",
        "$expand",
        "with",
        "populate",
        "sideload",
        "only",
        "exclude",
        "omit",
        "view",
    }
)
_MAX_LENGTH = 8192  # the catalogue's ceiling for max_length


def _media_name(media: str) -> str | None:
    base = media.split(";")[0].strip().lower()
    return "json" if base.endswith("+json") else _MEDIA.get(base)


def read_body(spec: Spec, request_body: dict[str, Any]) -> tuple[Any, list[str]]:
    """The endpoint's ``body`` (or a TODO) and comment lines about what was left out."""
    content = request_body.get("content") or {}
    media: list[str] = []
    writable: list[str] = []
    free_form = False
    unreadable = []
    for name, item in content.items():
        kind = _media_name(name)
        if kind is None:
            unreadable.append(name)
            continue
        if kind not in media:
            media.append(kind)
        schema = (item or {}).get("schema")
        props = spec.properties(schema)
        if spec.kind(schema) != "object" or not props:
            free_form = True
        writable += [key for key, raw in props.items() if key not in writable and not spec.is_read_only(raw)]
    notes = [f"request media the gateway cannot read, refused (415): {', '.join(unreadable)}"] if unreadable else []
    if not media:
        return todo(
            f"the request body is {', '.join(unreadable) or 'not described'}: the gateway reads "
            f"json, form and multipart bodies only"
        ), notes
    if free_form:
        return {
            "media": media,
            "writable": todo(
                "the request schema lists no keys (a free-form or array "
                "body): which keys may a restricted caller write?"
            ),
        }, notes
    return {"media": media, "writable": writable}, notes


def bulk_ids(spec: Spec, request_body: dict[str, Any]) -> str:
    """Where a bulk write's body lists the record ids: ``ids[]``, ``lead_ids[]``, ``ids[].id`` (objects)."""
    for item in (request_body.get("content") or {}).values():
        props = spec.properties((item or {}).get("schema"))
        for key, raw in props.items():
            if spec.kind(raw) != "array" or not (key == "ids" or key.endswith(("_ids", "Ids"))):
                continue
            inner = spec.items(raw)
            if spec.kind(inner) == "object":
                if "id" in spec.properties(inner):
                    return f"{key}[].id"
                continue
            return f"{key}[]"
    return todo("no list of ids in the request schema: where does the body name the records it changes?")


def read_query(spec: Spec, parameters: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], list[str]]:
    """The endpoint's ``query`` mapping and comment lines; empty when the operation takes none."""
    out: dict[str, Any] = {}
    notes: list[str] = []
    for param in parameters:
        name = param.get("name")
        if param.get("in") != "query" or not isinstance(name, str):
            continue
        if name.lower() in RESHAPING:
            out[name] = todo(
                f"'{name}' reshapes the answer (sideloads, expands or hides fields): declare it "
                f"only if the answer contract covers every shape it yields, else remove it"
            )
            continue
        out[name], note = _query_param(spec, name, param.get("schema"))
        if note:
            notes.append(note)
    return out, notes


def _query_param(spec: Spec, name: str, raw: Any) -> tuple[Any, str | None]:
    schema = spec.resolve(raw)
    kind = spec.kind(schema)
    enum = [v for v in schema.get("enum") or [] if v is not None]
    if enum and kind in ("string", "integer", "number", "unknown"):
        return {"type": "enum", "values": [str(v) for v in enum]}, None
    if kind == "integer":
        return _int_bounds(schema), None
    if kind == "boolean":
        return {"type": "bool"}, None
    if kind == "array":
        return todo(
            f"'{name}' is a list: the gateway checks one value per name; declare its item type if "
            f"one value is enough, or remove it"
        ), None
    if kind == "number":
        return {"max_length": 40}, f"query {name}: a number, checked as text of at most 40 characters"
    if kind in ("object",):
        return todo(
            f"'{name}' is an object (deepObject style?): declare the plain parameters it expands to, or remove it"
        ), None
    length = schema.get("maxLength")
    if isinstance(length, int) and length >= 1:
        return {"max_length": min(length, _MAX_LENGTH)}, None
    if schema.get("format") == "uuid":
        return {"max_length": 36}, None
    return {}, None  # a string of at most 200 characters, the catalogue's default


def _int_bounds(schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "int"}
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(ex_low, (int, float)) and not isinstance(ex_low, bool):  # OpenAPI 3.1: a number
        low = int(ex_low) + 1
    elif ex_low is True and isinstance(low, (int, float)):  # 3.0: a flag on minimum
        low = int(low) + 1
    if isinstance(ex_high, (int, float)) and not isinstance(ex_high, bool):
        high = int(ex_high) - 1
    elif ex_high is True and isinstance(high, (int, float)):
        high = int(high) - 1
    if isinstance(low, (int, float)) and not isinstance(low, bool):
        out["min"] = int(low)
    if isinstance(high, (int, float)) and not isinstance(high, bool):
        out["max"] = int(high)
    return out
