"""Strict YAML loading for admin-edited rule files.

Every rule file goes through :func:`load_yaml`: it refuses duplicate keys, non-string keys,
anchors/aliases and unknown format versions, and it remembers where every value came from so that
schema errors can be reported as ``file:line:col: message`` (pySigma's loader is the model; Casbin's
silent skip of a bad line is the counter-example). Problems are collected, never raised one at a time,
so ``crmgw rules check`` can show all of them at once.

The schema side lives here too: :class:`StrictModel` is the base of every rule-file model, and
:func:`validation_errors` is the one place pydantic's errors become ``file:line:col`` errors, so an
unknown key, a missing field and a bad value are reported at the same kind of position in every file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar, overload

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

FORMAT = "crmgw.rules/v1"

Loc = tuple[int, int]  # 1-based line, 1-based column

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")


class StrictModel(BaseModel):
    """The base of every rule-file model: an unknown key is an error, and a loaded value never changes.

    ``populate_by_name`` is deliberately not here: the few models with an aliased field (``in``,
    ``from``) turn it on themselves.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class RuleError:
    """One problem in one rule file, printed as ``file:line:col: message``."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


@dataclasses.dataclass(slots=True)
class Document:
    """A parsed YAML file: plain Python data plus the location of every node."""

    file: str
    data: Any
    locations: dict[tuple[Any, ...], Loc]
    key_locations: dict[tuple[Any, ...], Loc] = dataclasses.field(default_factory=dict)

    def key_loc(self, path: Iterable[Any]) -> Loc:
        """Location of the *key* that names ``path`` (for unknown-key errors), else of its value."""
        path = tuple(path)
        found = self.key_locations.get(self.resolve(path[:-1]) + path[-1:]) if path else None
        return found or self.loc(path)

    def loc(self, path: Iterable[Any]) -> Loc:
        """Location of the deepest known node along ``path`` (a pydantic ``loc`` works)."""
        return self.locations.get(self.resolve(path), self.locations.get((), (1, 1)))

    def resolve(self, path: Iterable[Any]) -> tuple[Any, ...]:
        """The deepest node of this document that ``path`` leads to.

        Parts naming no node are skipped: pydantic puts the union member it tried into ``loc``
        (``approvers.ApproversSpec.roles``), and a missing field has no node of its own.
        """
        found: tuple[Any, ...] = ()
        for part in path:
            if found + (part,) in self.locations:
                found = found + (part,)
        return found

    def error(self, path: Iterable[Any], message: str) -> RuleError:
        line, col = self.loc(path)
        return RuleError(self.file, line, col, message)


def _mark(node: yaml.Node) -> Loc:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.errors: list[RuleError] = []
        self.locations: dict[tuple[Any, ...], Loc] = {}
        self.key_locations: dict[tuple[Any, ...], Loc] = {}
        self.seen: set[int] = set()

    def err(self, node: yaml.Node, message: str) -> None:
        line, col = _mark(node)
        self.errors.append(RuleError(self.file, line, col, message))

    def build(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        self.locations[path] = _mark(node)
        if id(node) in self.seen:  # compose() resolves an alias to the very same node object
            self.err(node, "YAML anchors and aliases are not allowed in rule files")
        self.seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.err(key_node, "YAML merge keys ('<<') are not allowed in rule files")
                    continue
                key = self.build(key_node, path + ("<key>",))
                if not isinstance(key, str):
                    self.err(key_node, f"keys must be strings, got {type(key).__name__} {key!r}")
                    continue
                if key in out:
                    first = self.locations.get(path + (key,), (0, 0))
                    self.err(key_node, f"duplicate key {key!r} (first defined at line {first[0]})")
                    continue
                self.key_locations[path + (key,)] = _mark(key_node)
                out[key] = self.build(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        # Scalars: let PyYAML's safe constructor resolve the type (int, bool, str, ...).
        # Timestamps stay strings: rule files name times with explicit offsets, parsed later.
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":str"):
            return yaml.SafeLoader.construct_scalar(_SCALAR_LOADER, node)
        try:
            return _SCALAR_LOADER.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            # Explicit tags (!!python/object, !custom, !!binary on garbage) and YAML 1.1's "="
            # value tag have no safe constructor: an error at the value, never an exception
            # (found by tests/property/test_rule_loader_fuzz.py).
            self.err(node, f"cannot read the value {node.value!r} (tag {node.tag})")
            return None


_SCALAR_LOADER = yaml.SafeLoader("")


def _compose(text: str) -> yaml.Node | None:
    """The node tree of ``text``: libyaml's parser when PyYAML has it (about ten times faster: rule
    sets load at every reload and in every test), the same nodes and marks as the pure-Python one.
    A text libyaml refuses is parsed again by the pure-Python parser, whose error (problem, line,
    column) is the one reported, so the messages do not depend on how PyYAML was built."""
    # libyaml accepts a few things the pure parser refuses (tabs as separators, "?" inside flow
    # collections): a text holding either is read by the pure parser alone, so a rule file is
    # accepted or refused the same whichever way PyYAML was built.
    if FAST_LOADER is not None and "\t" not in text and "?" not in text:
        try:
            return yaml.compose(text, Loader=FAST_LOADER)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


FAST_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def parse_yaml(text: str, file: str) -> tuple[Document | None, list[RuleError]]:
    """Parse one YAML text strictly; returns the document (None on syntax error) and problems."""
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        return None, [RuleError(file, line, col, f"YAML syntax error: {problem}")]
    except yaml.YAMLError as exc:  # pragma: no cover - errors without a mark
        return None, [RuleError(file, 1, 1, f"YAML error: {exc}")]
    if node is None:
        return None, [RuleError(file, 1, 1, "file is empty")]
    builder = _Builder(file)
    data = builder.build(node, ())
    return Document(file, data, builder.locations, builder.key_locations), builder.errors


def load_yaml(path: Path, display: str | None = None) -> tuple[Document | None, list[RuleError]]:
    """Read and parse ``path``; checks the ``format`` key. ``display`` is the name used in errors."""
    file = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [RuleError(file, 1, 1, f"cannot read file: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [RuleError(file, 1, 1, f"file is not valid UTF-8 (byte {exc.start})")]
    doc, errors = parse_yaml(text, file)
    if doc is None:
        return None, errors
    if not isinstance(doc.data, dict):
        return None, errors + [doc.error((), "top level must be a mapping with a 'format' key")]
    version = doc.data.get("format")
    if version != FORMAT:
        errors.append(doc.error(("format",), f"unknown or missing format {version!r}; expected {FORMAT!r}"))
        return None, errors
    return doc, errors


def validation_errors(doc: Document, exc: ValidationError, at: tuple[Any, ...] = ()) -> list[RuleError]:
    """Pydantic's errors about the part of ``doc`` found at ``at``, as ``file:line:col: path: message``.

    An unknown key (or a key a mapping does not accept) points at the key, since its value may be
    a whole block; a missing field points at the mapping that lacks it; anything else at the value.
    """
    errors = []
    for item in exc.errors(include_url=False):
        loc = at + tuple(item["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}" if loc else "unknown key"
            line, col = doc.key_loc(loc)
        elif loc[-1:] == ("[key]",):  # pydantic's marker for a dict key that failed validation
            line, col = doc.key_loc(loc[:-1])
        else:
            line, col = doc.loc(loc)
        errors.append(RuleError(doc.file, line, col, f"{where}: {message}"))
    return errors


@overload
def validate_at(
    doc: Document, at: tuple[Any, ...], data: Any, model: type[ModelT], errors: list[RuleError]
) -> ModelT | None: ...
@overload
def validate_at(
    doc: Document, at: tuple[Any, ...], data: Any, model: TypeAdapter[T], errors: list[RuleError]
) -> T | None: ...
def validate_at(
    doc: Document,
    at: tuple[Any, ...],
    data: Any,
    model: type[BaseModel] | TypeAdapter[Any],
    errors: list[RuleError],
) -> Any:
    """Validate the part of ``doc`` found at ``at`` (a model or a TypeAdapter); None after adding
    its problems to ``errors``. Files are validated piece by piece so one bad rule does not hide the
    problems of the next."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        errors.extend(validation_errors(doc, exc, at))
        return None


def validate(
    doc: Document, model: type[ModelT], context: dict[str, Any] | None = None
) -> tuple[ModelT | None, list[RuleError]]:
    """Validate ``doc.data`` with a pydantic model; returns (instance or None, errors with file:line)."""
    try:
        return model.model_validate(doc.data, context=context), []
    except ValidationError as exc:
        return None, validation_errors(doc, exc)
