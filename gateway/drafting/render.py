"""The draft as operations.yaml text: the catalogue's key order, a comment above each entry.

PyYAML writes the values (quoting ``"TODO: ..."`` and ``{id:uuid}`` where YAML needs it); the
comments are written around it, since a dumper has no place for them. Aliases are never written:
the rule file loader refuses anchors, and a draft reusing one list for PUT and PATCH would
otherwise come out with ``&id001``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from gateway.context.todos import is_todo
from gateway.rulefile import FORMAT

KEY_ORDER = (
    "method",
    "path",
    "operation",
    "records",
    "format",
    "lookup",
    "ids_from_body",
    "body",
    "query",
    "related",
    "aggregates",
    "metadata",
    "undeclared",
    "max_records",
    "columns",
    "csv_scope",
)


class _Dumper(yaml.SafeDumper):
    """Block style down to the leaves, flow style for a leaf (``[a, b]``, ``{type: int, min: 1}``),
    TODO values in double quotes so they read as what they are; never an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _leaf(values: Iterable[Any]) -> bool:
    return all(not isinstance(v, (dict, list)) and not is_todo(v) for v in values)


def _list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_leaf(data))


def _dict(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.Node:
    flow = _leaf(data.values()) and len(data) <= 4 and "method" not in data
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"' if is_todo(data) else None)


_Dumper.add_representer(list, _list)
_Dumper.add_representer(dict, _dict)
_Dumper.add_representer(str, _str)


def dump(value: Any) -> str:
    # No wrapping: a TODO reason folded over escaped lines is harder to read than a long line.
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def ordered(entry: dict[str, Any]) -> dict[str, Any]:
    known = {key: entry[key] for key in KEY_ORDER if key in entry}
    return {**known, **{k: v for k, v in entry.items() if k not in known}}


def _comment(lines: Iterable[str]) -> str:
    return "".join(f"# {line}\n" if line else "#\n" for line in lines)


def catalogue_text(
    header: list[str],
    resources: dict[str, Any],
    entries: list[tuple[list[str], dict[str, Any]]],
    resource_note: list[str] | None = None,
) -> str:
    """A whole operations.yaml: header comment, format, resources, then each endpoint under its comment."""
    parts = [_comment(header), f"format: {FORMAT}\n"]
    if resource_note:
        parts.append("\n" + _comment(resource_note))
    parts.append(dump({"resources": resources}) if resources else "resources: {}\n")
    parts.append("\nendpoints:\n" if entries else "\nendpoints: []\n")
    for comments, entry in entries:
        parts.append(_comment(comments) + dump([ordered(entry)]))
    return "".join(parts)
