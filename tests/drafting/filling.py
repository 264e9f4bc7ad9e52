"""Filling a drafted catalogue's TODOs the way an admin would, but from a table: test helpers.

A TODO's place is named by what an admin reads in the file::

    ("resources", "leads", "scope")
    ("endpoints", "GET", "/api/v3/leads/", "query", "fields")     # the path without parameter types

``fill`` replaces each with the table's value, removes the key for ``DROP`` and the whole endpoint
for ``DROP_ENDPOINT``, and fails on a TODO the table does not decide: so a test's table is also the
exact list of decisions the draft asked for.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gateway.context.routes import PARAM_TYPES
from gateway.context.todos import is_todo
from gateway.drafting.render import dump

DROP = object()
DROP_ENDPOINT = object()
# Typed parameters {x:uuid} are being added to gateway/context/routes.py by another change; until
# the router knows "uuid" the drafted catalogue is loaded with {x} in their place.
UUID_PARAMS = "uuid" in PARAM_TYPES


def untyped(template: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", template)


def loadable(text: str) -> str:
    return text if UUID_PARAMS else re.sub(r"\{(\w+):uuid\}", r"{\1}", text)


def endpoint_key(endpoint: dict[str, Any]) -> tuple[str, str]:
    return endpoint["method"], untyped(endpoint["path"])


def todo_places(data: dict[str, Any]) -> dict[tuple[Any, ...], str]:
    """Every TODO of a drafted catalogue (parsed), by place, with its text."""
    found: dict[tuple[Any, ...], str] = {}
    for name, resource in (data.get("resources") or {}).items():
        _collect(resource, ("resources", name), found)
    for endpoint in data.get("endpoints") or []:
        _collect(endpoint, ("endpoints", *endpoint_key(endpoint)), found)
    return found


def _collect(value: Any, where: tuple[Any, ...], found: dict[tuple[Any, ...], str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _collect(item, where + (key,), found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _collect(item, where + (i,), found)
    elif is_todo(value):
        found[where] = value


def fill(data: dict[str, Any], decide: dict[tuple[Any, ...], Any]) -> dict[str, Any]:
    places = todo_places(data)
    undecided = sorted(set(places) - set(decide), key=str)
    assert not undecided, "the draft asks for decisions the test does not make:\n" + "\n".join(
        f"{place}: {places[place]}" for place in undecided
    )
    dropped: set[tuple[str, str]] = set()
    for place in places:
        value = decide[place]
        if value is DROP_ENDPOINT:
            dropped.add(place[1:3])
            continue
        root = (
            data["resources"][place[1]]
            if place[0] == "resources"
            else next(e for e in data["endpoints"] if endpoint_key(e) == place[1:3])
        )
        inner = place[2:] if place[0] == "resources" else place[3:]
        for step in inner[:-1]:
            root = root[step]
        if value is DROP:
            del root[inner[-1]]
        else:
            root[inner[-1]] = value
    data["endpoints"] = [e for e in data["endpoints"] if endpoint_key(e) not in dropped]
    return data


def write_catalogue(data: dict[str, Any], path: Path) -> Path:
    path.write_text(loadable(dump(data)), encoding="utf-8")  # dump: never a YAML alias
    return path
