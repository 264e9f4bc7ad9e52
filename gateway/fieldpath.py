"""Field paths: how rule files point into JSON records without code.

Syntax (dots between segments; ``[]`` after a segment walks every item of a list)::

    $                    the value itself (the whole body, or the whole record)
    owner_id             record["owner_id"]
    owner.email          record["owner"]["email"]
    assigned_to[].email  every item["email"] of record["assigned_to"]
    data[]               every item of body["data"]   (used to locate records in a response)
    results.items[]      every item of body["results"]["items"]
    "Assigned to"        record["Assigned to"]: a quoted segment names any key (spaces, dots,
    meta."a.b"[]         brackets; \" and \\ inside the quotes), in JSON and as a CSV column

A path is parsed once (:func:`parse`) into a tuple of ``(key, walk_list)`` steps and evaluated many
times. Missing keys and wrong types yield nothing: a missing fact never matches (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\[\])?$")

Step = tuple[str, bool]
Path = tuple[Step, ...]


class FieldPathError(ValueError):
    pass


def parse(text: str) -> Path:
    """Parse ``text``; raises FieldPathError with a message fit for ``file:line: message``."""
    if not isinstance(text, str) or not text:
        raise FieldPathError("field path must be a non-empty string")
    if text == "$":
        return ()
    steps: list[Step] = []
    i = 0
    while True:
        if text.startswith('"', i):
            key, i = _quoted(text, i)
            walk = text.startswith("[]", i)
            i += 2 if walk else 0
        else:
            end = text.find(".", i)
            segment = text[i:] if end < 0 else text[i:end]
            if not _SEGMENT.match(segment):
                raise FieldPathError(
                    f"bad field path {text!r}: segment {segment!r} must be a name, optionally followed by [] "
                    '(quote any other key: "Assigned to")'
                )
            walk = segment.endswith("[]")
            key = segment[:-2] if walk else segment
            i += len(segment)
        steps.append((key, walk))
        if i == len(text):
            return tuple(steps)
        if text[i] != ".":
            raise FieldPathError(f"bad field path {text!r}: expected '.' between segments at character {i + 1}")
        if i + 1 == len(text):
            raise FieldPathError(f"bad field path {text!r}: ends with '.'")
        i += 1


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The key of a quoted segment starting at ``text[i] == '"'`` and the index after its quote."""
    out: list[str] = []
    j = i + 1
    while j < len(text):
        ch = text[j]
        if ch == "\\" and j + 1 < len(text) and text[j + 1] in '"\\':
            out.append(text[j + 1])
            j += 2
        elif ch == '"':
            if not out:
                raise FieldPathError(f"bad field path {text!r}: empty quoted segment")
            return "".join(out), j + 1
        else:
            out.append(ch)
            j += 1
    raise FieldPathError(f"bad field path {text!r}: unterminated quote")


def values(obj: Any, path: Path) -> Iterator[Any]:
    """Yield every value ``path`` reaches in ``obj`` (nothing when it reaches nothing)."""
    if not path:
        yield obj
        return
    (key, walk), rest = path[0], path[1:]
    if not isinstance(obj, dict) or key not in obj:
        return
    value = obj[key]
    if walk:
        if isinstance(value, list):
            for item in value:
                yield from values(item, rest)
        return
    yield from values(value, rest)


def containers(obj: Any, path: Path) -> Iterator[tuple[Any, str]]:
    """Yield ``(parent_dict, key)`` for each place the final segment of ``path`` names.

    Used by masking, which must change the value in place. A final ``[]`` segment is not a
    maskable place (masking acts on a field, not on list items) and yields nothing.
    """
    if not path:
        return
    *head, (key, walk) = path
    if walk:
        return
    parents: Iterator[Any] = values(obj, tuple(head)) if head else iter((obj,))
    for parent in parents:
        if isinstance(parent, dict) and key in parent:
            yield parent, key


def first_segment(path: Path) -> str | None:
    """The top-level column a path names, or None: CSV rows only have top-level columns."""
    if len(path) == 1 and not path[0][1]:
        return path[0][0]
    return None
