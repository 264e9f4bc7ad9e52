"""Path templates and the router that maps a normalised path to one catalogue entry.

A template is ``/api/customers/{id}`` or ``/api/customers/{id:int}``: every segment is either a
literal or a whole-segment parameter. ``{name}`` matches any one non-empty segment; a typed one only
its own kind: ``{name:int}`` ASCII digits, ``{name:uuid}`` a UUID (8-4-4-4-12 hex digits),
``{name:slug}`` letters, digits, ``-`` and ``_``, ``{name:<pattern>}`` a named regular expression the
catalogue declares under ``patterns``. Matching walks a trie of segments per method and tries, at
each level, the literal child first, then the typed parameters (int, uuid, the named patterns,
slug), then an untyped one, backtracking when a branch dead-ends. So ``/api/customers/export.csv``
is the export endpoint, never "view the customer whose id is export.csv", ``/api/leads/kanban/``
is never "the record whose id is kanban" once ids are typed ``uuid``, and the result does not depend
on the order entries were written in.

Trailing slashes are part of the path (``exact``) unless the catalogue says ``trailing_slash:
either``: then ``/api/leads`` and ``/api/leads/`` match the same entry (the path is forwarded as the
client sent it).

Two templates with the same *shape* (same literals and parameter kinds, names aside) would match
the same requests; :meth:`Router.add` reports the clash instead of silently keeping one.

Parameter values are returned as they appear in the normalised path (still %-encoded), so a lookup
URL rebuilt from them with :func:`expand` is byte for byte what a client could have sent.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from gateway.context.normalise import _RAW_OK, normalise_target
from gateway.errors import AmbiguousRequest

T = TypeVar("T")

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_][A-Za-z0-9_]*))?\}$")
LITERAL, INT, ANY = "lit", "int", "any"
BUILTIN: dict[str, re.Pattern[str]] = {
    "int": re.compile(r"[0-9]+"),
    "uuid": re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    "slug": re.compile(r"[A-Za-z0-9_-]+"),
}
PARAM_TYPES = tuple(BUILTIN)

# (LITERAL, text) | (a type: "int", "uuid", "slug" or a pattern's name, param name) | (ANY, param name)
Segment = tuple[str, str]


class TemplateError(ValueError):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Template:
    text: str
    segments: tuple[Segment, ...]

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(value for kind, value in self.segments if kind != LITERAL)

    @property
    def shape(self) -> tuple[Segment, ...]:
        """What decides which requests match: literals and parameter kinds, not names."""
        return tuple((kind, value if kind == LITERAL else "") for kind, value in self.segments)

    @property
    def key(self) -> str:
        """The template with parameter types dropped: ``/api/customers/{id}``."""
        parts = (value if kind == LITERAL else "{" + value + "}" for kind, value in self.segments)
        return "/" + "/".join(parts)


def parse_template(text: Any, patterns: Iterable[str] = ()) -> Template:
    """Parse a catalogue path template; raises TemplateError with a message for file:line.

    ``patterns``: the names of the catalogue's regular expressions, usable as parameter types."""
    if not isinstance(text, str) or not text.startswith("/"):
        raise TemplateError(f"path template must start with '/': {text!r}")
    if text == "/":
        return Template(text, (("lit", ""),))
    parts = text[1:].split("/")
    segments: list[Segment] = []
    for i, part in enumerate(parts):
        if part == "" and i != len(parts) - 1:
            raise TemplateError(f"empty segment ('//') in path template {text!r}")
        if part.startswith("{") or part.endswith("}"):
            m = _PARAM.match(part)
            if not m:
                raise TemplateError(f"bad parameter {part!r}: use {{name}} or {{name:int}} as a whole segment")
            name, kind = m.group(1), m.group(2)
            known = (*PARAM_TYPES, *patterns)
            if kind is not None and kind not in known:
                raise TemplateError(f"unknown parameter type {kind!r} in {part!r} (known: {', '.join(known)})")
            if name in (v for k, v in segments if k != LITERAL):
                raise TemplateError(f"parameter {name!r} appears twice in {text!r}")
            segments.append((kind or ANY, name))
            continue
        if part in (".", "..") or not all(ch in _RAW_OK for ch in part):
            raise TemplateError(
                f"literal segment {part!r} of {text!r} may only use letters, digits and -._~!$&'()*+,=:@"
            )
        segments.append((LITERAL, part))
    return Template(text, tuple(segments))


class _Node(Generic[T]):
    __slots__ = ("any_child", "leaf", "literals", "typed")

    def __init__(self) -> None:
        self.literals: dict[str, _Node[T]] = {}
        self.typed: dict[str, _Node[T]] = {}  # parameter type -> child, tried in the router's order
        self.any_child: _Node[T] | None = None
        self.leaf: tuple[T, Template] | None = None

    def child(self, segment: Segment) -> _Node[T]:
        kind, value = segment
        if kind == LITERAL:
            return self.literals.setdefault(value, _Node())
        if kind == ANY:
            if self.any_child is None:
                self.any_child = _Node()
            return self.any_child
        return self.typed.setdefault(kind, _Node())


class Router(Generic[T]):
    """Method -> trie of template segments; each leaf holds one value (a catalogue Endpoint).

    ``patterns``: the catalogue's named regular expressions (whole-segment matches), tried after
    int and uuid and before slug; ``trailing_slash``: ``exact`` or ``either``.
    """

    def __init__(self, patterns: dict[str, re.Pattern[str]] | None = None, trailing_slash: str = "exact") -> None:
        self._roots: dict[str, _Node[T]] = {}
        named = dict(patterns or {})
        self._patterns = tuple(named)
        self._order = ["int", "uuid", *named, "slug"]
        self._matchers = {**BUILTIN, **named}
        self.trailing_slash = trailing_slash

    def parse(self, text: Any) -> Template:
        """:func:`parse_template` with this router's named patterns."""
        return parse_template(text, self._patterns)

    def add(self, method: str, template: Template, value: T) -> T | None:
        """Register; returns the value already registered for the same shape (a clash), else None."""
        node = self._roots.setdefault(method, _Node())
        for segment in template.segments:
            node = node.child(segment)
        if node.leaf is not None:
            return node.leaf[0]
        node.leaf = (value, template)
        return None

    def match(self, method: str, path: str) -> tuple[T, dict[str, str]] | None:
        root = self._roots.get(method)
        if root is None or not path.startswith("/"):
            return None
        parts = path[1:].split("/")
        found = self._walk(root, parts, 0)
        if found is None and self.trailing_slash == "either" and path != "/":
            parts = parts[:-1] if parts[-1] == "" else parts + [""]
            found = self._walk(root, parts, 0)
        if found is None:
            return None
        value, template = found
        params = {name: parts[i] for i, (kind, name) in enumerate(template.segments) if kind != LITERAL}
        return value, params

    def _walk(self, node: _Node[T], parts: list[str], i: int) -> tuple[T, Template] | None:
        if i == len(parts):
            return node.leaf
        segment = parts[i]
        literal = node.literals.get(segment)
        if literal is not None and (found := self._walk(literal, parts, i + 1)) is not None:
            return found
        if not segment:  # parameters never match an empty segment (a trailing slash)
            return None
        for kind in self._order:
            child = node.typed.get(kind)
            if (
                child is not None
                and self._matchers[kind].fullmatch(segment)
                and (found := self._walk(child, parts, i + 1)) is not None
            ):
                return found
        if node.any_child is not None:
            return self._walk(node.any_child, parts, i + 1)
        return None


def encode_segment(value: str | int) -> str:
    """%-encode a raw value (e.g. an id from a JSON body) as one canonical path segment."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"a path parameter must be a string or an integer, not {type(value).__name__}")
    text = str(value)
    if text in ("", ".", ".."):
        raise ValueError(f"{text!r} cannot be a path segment")
    encoded = quote(text, safe="-_~!$&'()*+,=:@")  # '.' is always left as is by quote
    return _canonical("/" + encoded)[1:]


def _canonical(path: str) -> str:
    try:
        return normalise_target(path)[0]
    except AmbiguousRequest as exc:
        raise ValueError(f"{path[1:]!r} is not a safe path segment ({exc.reason})") from None


def expand(template: Template, params: dict[str, str | int]) -> str:
    """Build a path from a template and parameter values that are already path segments.

    Values captured by :meth:`Router.match` qualify as they are; raw values (ids read from a
    request body) go through :func:`encode_segment` first. Raises ValueError for anything that
    is not exactly one canonical segment, so a lookup URL can never point somewhere else.
    """
    out: list[str] = []
    for kind, value in template.segments:
        if kind == LITERAL:
            out.append(value)
            continue
        if value not in params:
            raise ValueError(f"no value for parameter {value!r}")
        raw = params[value]
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise ValueError(f"parameter {value!r} must be a string or an integer")
        segment = str(raw)
        if kind in BUILTIN and not BUILTIN[kind].fullmatch(segment):
            raise ValueError(f"parameter {value!r} must be {kind}, got {segment!r}")
        if not segment or "/" in segment or "?" in segment:
            raise ValueError(f"parameter {value!r} is not one path segment: {segment!r}")
        if _canonical("/" + segment) != "/" + segment:  # raises on anything ambiguous
            raise ValueError(f"parameter {value!r} is not in canonical form: {segment!r}")
        out.append(segment)
    return "/" + "/".join(out)
