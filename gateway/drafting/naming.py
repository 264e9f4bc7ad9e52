"""Names a draft guesses from paths: the resource, the action, and what a segment of a real path is.

A path after its API prefix (``/api/v2``) reads as collections and items::

    /leads/                       collection "leads"           GET list, POST create
    /leads/{id}/                  item of "leads"              GET view, PUT/PATCH update, DELETE delete
    /leads/{id}/notes/            sub-collection "notes"       GET list, POST create
    /leads/export/                a word on a collection       export (the word says so)
    /leads/kanban/                a word on a collection       list or view, by what the answer holds
    /leads/{id}/convert/          a word on an item            a custom action: a TODO, never a guess

A literal right after another literal is a *word* (an action or a view of the collection before
it); right after a parameter it is a sub-collection unless it is a known action word. What the
answer holds can rename the resource later (``/leads/{id}/duplicates/`` lists Lead records, so
``leads``): that is the caller's business (from_openapi), this module only reads paths.
"""

from __future__ import annotations

import dataclasses
import re

# Leading segments that say "this is an API", not what the API is about.
_PREFIX = re.compile(r"^(api|apis|rest|restapi|public|services?|v\d+(\.\d+)*)$", re.IGNORECASE)
_PARAM = re.compile(r"^\{([^{}]+)\}$")
# Words that act on one record rather than name records under it.
ITEM_ACTIONS = frozenset(
    {
        "approve",
        "archive",
        "assign",
        "cancel",
        "clone",
        "close",
        "complete",
        "convert",
        "copy",
        "download",
        "duplicate",
        "export",
        "import",
        "lock",
        "merge",
        "publish",
        "reject",
        "reopen",
        "restore",
        "send",
        "submit",
        "transfer",
        "unlock",
        "upload",
    }
)
_BULK = {
    "update": ("update", "edit", "patch", "assign", "change", "move"),
    "delete": ("delete", "destroy", "remove", "purge"),
    "create": ("create", "insert", "add"),
}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^[0-9a-fA-F]{8,}$")
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")


@dataclasses.dataclass(frozen=True)
class PathShape:
    collection: str | None  # the resource the path names ("leads"), None for "/" alone
    ends: str  # "collection" | "item" | "word"
    word: str | None = None  # the final literal when ends == "word" ("kanban", "export.csv")
    after_item: bool = False  # the word follows a parameter: it acts on one record
    admin: bool = False  # an "admin" segment: the catalogue's admin action

    @property
    def tokens(self) -> frozenset[str]:
        return frozenset(re.split(r"[^a-z0-9]+", (self.word or "").lower())) - {""}


def resource_name(text: str) -> str:
    """A catalogue resource name: lower case letters, digits and '_' (``Sales-Orders`` -> ``sales_orders``)."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    name = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return name if name[:1].isalpha() else f"r_{name}" if name else "unnamed"


def singular(name: str) -> str:
    if name.endswith("ies") and len(name) > 3:
        return name[:-3] + "y"
    if name.endswith(("sses", "xes", "ches", "shes")):
        return name[:-2]
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def plural(name: str) -> str:
    if name.endswith("y") and name[-2:-1] not in tuple("aeiou"):
        return name[:-1] + "ies"
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    return name + "s"


def resource_for_component(component: str, collections: set[str]) -> str:
    """The resource a schema component's records belong to: ``Lead`` -> ``leads`` when the document
    has a ``leads`` collection, else the component's name made plural."""
    base = resource_name(component)
    for candidate in (plural(base), base, base + "s"):
        if candidate in collections:
            return candidate
    return plural(base)


def split_path(path: str) -> list[str]:
    """Segments without their leading '/' and without the empty one a trailing slash leaves."""
    parts = path.strip("/").split("/") if path.strip("/") else []
    return parts


def is_param(segment: str) -> bool:
    return bool(_PARAM.match(segment))


def shape(path: str) -> PathShape:
    segments = split_path(path)
    admin = any(s.lower() == "admin" for s in segments)
    while segments and not is_param(segments[0]) and _PREFIX.match(segments[0]) and len(segments) > 1:
        segments = segments[1:]
    if not segments:
        return PathShape(None, "collection", admin=admin)
    last, before = segments[-1], segments[:-1]
    if is_param(last):
        literal = next((s for s in reversed(before) if not is_param(s)), None)
        return PathShape(resource_name(literal) if literal else None, "item", admin=admin)
    prev = before[-1] if before else None
    word_tokens = set(re.split(r"[^a-z0-9]+", last.lower()))
    if prev is None or (is_param(prev) and not word_tokens & (ITEM_ACTIONS | {"bulk"})):
        return PathShape(resource_name(last), "collection", admin=admin)
    owner = next((s for s in reversed(before) if not is_param(s)), None)
    return PathShape(resource_name(owner) if owner else None, "word", last, is_param(prev), admin)


def word_action(s: PathShape) -> str | None:
    """The action a path's word names outright (export, import, bulk-update, ...), else None."""
    tokens = s.tokens
    if "export" in tokens or ("download" in tokens and not s.after_item):
        return "export"
    if "import" in tokens or ("upload" in tokens and not s.after_item):
        return "import"
    if "bulk" in tokens or "batch" in tokens:
        for action, words in _BULK.items():
            if tokens & set(words):
                return action
    return None


def method_action(method: str, s: PathShape) -> str | None:
    """The action of a collection or item path by its method; None when the method says nothing."""
    table = {
        "collection": {"GET": "list", "POST": "create"},
        "item": {"GET": "view", "PUT": "update", "PATCH": "update", "DELETE": "delete"},
    }
    return table.get(s.ends, {}).get(method)


# -- segments of real paths (audit logs) ------------------------------------------------------------


def segment_kind(segment: str) -> str | None:
    """What a real path segment looks like: ``uuid``, ``int``, ``id`` (hex or ULID), or None (a word)."""
    if _UUID.match(segment):
        return "uuid"
    if segment.isascii() and segment.isdigit():
        return "int"
    if _HEX.match(segment) and any(ch.isdigit() for ch in segment) and any(ch.isalpha() for ch in segment):
        return "id"
    if _ULID.match(segment) and any(ch.isdigit() for ch in segment):
        return "id"
    return None
