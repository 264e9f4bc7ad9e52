"""Path templates and the router that maps a normalised path to one catalogue entry.

A template is ``/api/customers/{id}`` or ``/api/customers/{id:int}``: every segment is either a
literal or a whole-segment parameter (``{name}`` matches one non-empty segment, ``{name:int}`` only
ASCII digits). Matching walks a trie of segments per method and tries, at each level, the literal
child first, then an ``int`` parameter, then an untyped one, backtracking when a branch dead-ends.
So ``/api/customers/export.csv`` is the export endpoint, never "view the customer whose id is
export.csv", and the result does not depend on the order entries were written in.

Two templates with the same *shape* (same literals and parameter kinds, names aside) would match
the same requests; :meth:`Router.add` reports the clash instead of silently keeping one.

Parameter values are returned as they appear in the normalised path (still %-encoded), so a lookup
URL rebuilt from them with :func:`expand` is byte for byte what a client could have sent.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from gateway.context.normalise import _RAW_OK, normalise_target
from gateway.errors import AmbiguousRequest

T = TypeVar("T")

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}$")
PARAM_TYPES = ("int",)
LITERAL, INT, ANY = "lit", "int", "any"

Segment = tuple[str, str]  # (LITERAL, text) | (INT, param name) | (ANY, param name)


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


def parse_template(text: Any) -> Template:
    """Parse a catalogue path template; raises TemplateError with a message for file:line."""
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
            if kind is not None and kind not in PARAM_TYPES:
                raise TemplateError(f"unknown parameter type {kind!r} in {part!r} (known: {', '.join(PARAM_TYPES)})")
            if name in (v for k, v in segments if k != LITERAL):
                raise TemplateError(f"parameter {name!r} appears twice in {text!r}")
            segments.append((INT if kind == "int" else ANY, name))
            continue
        if part in (".", "..") or not all(ch in _RAW_OK for ch in part):
            raise TemplateError(
                f"literal segment {part!r} of {text!r} may only use letters, digits and -._~!$&'()*+,=:@"
            )
        segments.append((LITERAL, part))
    return Template(text, tuple(segments))


class _Node(Generic[T]):
    __slots__ = ("literals", "int_child", "any_child", "leaf")

    def __init__(self) -> None:
        self.literals: dict[str, _Node[T]] = {}
        self.int_child: _Node[T] | None = None
        self.any_child: _Node[T] | None = None
        self.leaf: tuple[T, Template] | None = None

    def child(self, segment: Segment) -> _Node[T]:
        kind, value = segment
        if kind == LITERAL:
            return self.literals.setdefault(value, _Node())
        attr = "int_child" if kind == INT else "any_child"
        node = getattr(self, attr)
        if node is None:
            node = _Node()
            setattr(self, attr, node)
        return node


def _is_digits(segment: str) -> bool:
    return segment.isascii() and segment.isdigit()


class Router(Generic[T]):
    """Method -> trie of template segments; each leaf holds one value (a catalogue Endpoint)."""

    def __init__(self) -> None:
        self._roots: dict[str, _Node[T]] = {}

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
        found = _walk(root, parts, 0)
        if found is None:
            return None
        value, template = found
        params = {
            name: parts[i] for i, (kind, name) in enumerate(template.segments) if kind != LITERAL
        }
        return value, params


def _walk(node: _Node[T], parts: list[str], i: int) -> tuple[T, Template] | None:
    if i == len(parts):
        return node.leaf
    segment = parts[i]
    literal = node.literals.get(segment)
    if literal is not None and (found := _walk(literal, parts, i + 1)) is not None:
        return found
    if not segment:  # parameters never match an empty segment (a trailing slash)
        return None
    if node.int_child is not None and _is_digits(segment):
        if (found := _walk(node.int_child, parts, i + 1)) is not None:
            return found
    if node.any_child is not None:
        return _walk(node.any_child, parts, i + 1)
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
        if kind == INT and not _is_digits(segment):
            raise ValueError(f"parameter {value!r} must be digits, got {segment!r}")
        if not segment or "/" in segment or "?" in segment:
            raise ValueError(f"parameter {value!r} is not one path segment: {segment!r}")
        if _canonical("/" + segment) != "/" + segment:  # raises on anything ambiguous
            raise ValueError(f"parameter {value!r} is not in canonical form: {segment!r}")
        out.append(segment)
    return "/" + "/".join(out)
