"""Decisions left open in a rule file: values spelt ``"TODO: <reason>"``.

``crmgw catalogue draft`` writes a draft operations.yaml and cannot decide everything (who owns a
record, what a custom action does, which CSV column names the owner). It writes each open decision
as a string value where the decision belongs::

    scope: "TODO: which record fields decide own / team (candidates: assigned_to[].id, teams[].name)"
    records: "TODO: no JSON schema for the 200 answer"

A comment would be lost on the way to the gateway and a half-filled draft could load with a
guess in place of a decision; a value is always seen. The spelling, so both tools and people can
find it: a string whose text (leading blanks aside) is ``TODO`` or starts with ``TODO:``. A mapping
key spelt that way counts too. :func:`find_todos` reports each one as ``file:line:col: TODO left:
<reason>``, so the catalogue loader can refuse a catalogue that still has any.
"""

from __future__ import annotations

from typing import Any

from gateway.rulefile import Document, RuleError

TODO = "TODO"
PREFIX = TODO + ":"


def todo(reason: str) -> str:
    """The value a draft writes where it cannot decide: ``"TODO: <reason>"``."""
    return f"{PREFIX} {' '.join(reason.split())}"


def is_todo(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text == TODO or text.startswith(PREFIX)


def reason_of(value: str) -> str:
    """``"TODO: no schema"`` -> ``"no schema"``; a bare ``TODO`` has no reason to give."""
    text = value.strip()[len(TODO) :].lstrip(":").strip()
    return text or "(no reason given)"


def find_todos(doc: Document) -> list[RuleError]:
    """Every TODO left in a loaded rule file, in file order, as ``TODO left: <reason>``."""
    found: list[RuleError] = []
    _walk(doc, doc.data, (), found)
    return sorted(found)


def _walk(doc: Document, value: Any, path: tuple[Any, ...], found: list[RuleError]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if is_todo(key):
                line, col = doc.key_loc(path + (key,))
                found.append(RuleError(doc.file, line, col, f"TODO left: {reason_of(key)}"))
            _walk(doc, item, path + (key,), found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(doc, item, path + (i,), found)
    elif is_todo(value):
        found.append(doc.error(path, f"TODO left: {reason_of(value)}"))
