"""Reading an OpenAPI 3.x document: operations, parameters, bodies and answers, with $refs resolved.

Only what a draft catalogue needs is read; nothing is validated beyond that. Local references
(``#/components/...``) are followed; a reference into another file cannot be, and reads as an empty
schema (the draft then has nothing to go on and writes a TODO there), so bundle a split document
first. Swagger 2.0 is refused: its bodies and answers are shaped differently, convert it first.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

# HEAD is decided as GET and never declared; TRACE and CONNECT are not CRM operations.
METHODS = ("get", "post", "put", "patch", "delete", "options")
_MAX_DEPTH = 12  # $ref chains and allOf nesting; deeper is a cycle or not worth following


class OpenAPIError(ValueError):
    """The file is not an OpenAPI 3.x document this drafter can read."""


@dataclasses.dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # as written in the document: /api/v2/leads/{id}/
    operation_id: str | None
    parameters: tuple[dict[str, Any], ...]  # resolved; the operation's override the path item's
    request_body: dict[str, Any] | None  # resolved
    responses: dict[str, dict[str, Any]]  # status code (text) -> resolved response


def load_openapi(path: Path) -> Spec:
    """Read JSON or YAML (by content: YAML parses JSON too); raises OpenAPIError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OpenAPIError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise OpenAPIError(f"{path}: not JSON or YAML: {exc}") from None
    return Spec(data, str(path))


class Spec:
    def __init__(self, data: Any, file: str = "openapi"):
        if not isinstance(data, dict):
            raise OpenAPIError(f"{file}: the top level is not a mapping")
        version = str(data.get("openapi", ""))
        if not version.startswith("3."):
            found = f"swagger {data['swagger']}" if "swagger" in data else repr(data.get("openapi"))
            raise OpenAPIError(f"{file}: not an OpenAPI 3.x document ({found}); convert it to 3.x first")
        if not isinstance(data.get("paths"), dict):
            raise OpenAPIError(f"{file}: no 'paths'")
        self.data, self.file, self.version = data, file, version
        self.unresolved: set[str] = set()  # references that could not be followed

    @property
    def title(self) -> str:
        info = self.data.get("info") or {}
        return f"{info.get('title', '?')} {info.get('version', '')}".strip()

    # -- references -------------------------------------------------------------------------------

    def resolve(self, node: Any) -> dict[str, Any]:
        """The node with its ``$ref`` chain followed; ``{}`` for anything unresolvable."""
        for _ in range(_MAX_DEPTH):
            if not isinstance(node, dict):
                return {}
            ref = node.get("$ref")
            if not isinstance(ref, str):
                return node
            node = self._pointer(ref)
        return {}

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            self.unresolved.add(ref)
            return None
        node: Any = self.data
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                self.unresolved.add(ref)
                return None
            node = node[part]
        return node

    def name_of(self, node: Any) -> str | None:
        """The component a schema is (``#/components/schemas/Lead`` -> ``Lead``), or its title."""
        for _ in range(_MAX_DEPTH):
            if not isinstance(node, dict):
                return None
            ref = node.get("$ref")
            if isinstance(ref, str):
                return ref.rsplit("/", 1)[-1] if ref.startswith("#/components/schemas/") else None
            parts = node.get("allOf")
            if isinstance(parts, list) and len(parts) == 1:  # allOf: [{$ref: Lead}] + description
                node = parts[0]
                continue
            title = node.get("title")
            return title if isinstance(title, str) and title.isidentifier() else None
        return None

    # -- schemas ----------------------------------------------------------------------------------

    def kind(self, schema: Any) -> str:
        """object, array, string, integer, number, boolean, or unknown (3.1 ``[x, "null"]`` is x)."""
        s = self.resolve(schema)
        kind = s.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        if isinstance(kind, str):
            return kind
        if self.properties(s) or any(k in s for k in ("additionalProperties", "allOf", "oneOf", "anyOf")):
            return "object"
        return "array" if "items" in s else "unknown"

    def items(self, schema: Any) -> Any:
        return self.resolve(schema).get("items")

    def properties(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        """Properties by name, allOf merged and oneOf/anyOf united (any of them may be sent)."""
        s = self.resolve(schema)
        if depth > _MAX_DEPTH:
            return {}
        out: dict[str, Any] = {}
        for key in ("allOf", "oneOf", "anyOf"):
            for part in s.get(key) or []:
                out.update(self.properties(part, depth + 1))
        props = s.get("properties")
        if isinstance(props, dict):
            out.update(props)
        return out

    def is_read_only(self, schema: Any) -> bool:
        return bool(self.resolve(schema).get("readOnly"))

    # -- operations -------------------------------------------------------------------------------

    def operations(self) -> list[Operation]:
        found = []
        for path, raw_item in self.data["paths"].items():
            item = self.resolve(raw_item)
            shared = [self.resolve(p) for p in item.get("parameters") or []]
            for method in METHODS:
                op = item.get(method)
                if not isinstance(op, dict):
                    continue
                params = {(p.get("name"), p.get("in")): p for p in shared}
                params.update({(p.get("name"), p.get("in")): p for p in map(self.resolve, op.get("parameters") or [])})
                body = self.resolve(op["requestBody"]) if "requestBody" in op else None
                responses = {str(code): self.resolve(r) for code, r in (op.get("responses") or {}).items()}
                found.append(
                    Operation(method.upper(), str(path), op.get("operationId"), tuple(params.values()), body, responses)
                )
        return found
