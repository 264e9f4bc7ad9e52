"""What every criterion is made of, and what it gets to compile itself.

A criterion is a single-key mapping in a rule's ``allow:``/``deny:`` block (``role: {in: [...]}``).
Each one lives in its own module of this package and registers a :class:`Criterion` subclass by
name (Pomerium's one-file-per-criterion registry): a new capability is a new module, not a new
``if`` in the engine.

A compiled criterion answers one question about a request with three values (Kleene logic):
``True``, ``False`` or ``None`` when the fact it needs is missing (no country for the IP, no client
IP, a user without a time zone). The engine, never the criterion, decides what ``None`` means: it
never grants access and never lifts a deny.

Each class names three reason codes: ``ok`` (the outcome that favours access), ``fail`` and
``unknown``. Which raw result favours access depends on where the criterion sits (an allow or a deny
block, under how many ``not``); :mod:`gateway.policy.conditions` works that out at compile time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.model import RequestContext, Resource
from gateway.rulefile import Document, RuleError, StrictModel, validation_errors

Outcome = bool | None
ModelT = TypeVar("ModelT", bound=BaseModel)
# A fact a criterion reads from the request: its name (the same name reads the same value, whichever
# criterion declares it) and how to read it. The decision cache (gateway.policy.cache) keys a
# decision by the values of exactly the facts its rules read.
Fact = tuple[str, Callable[[RequestContext], Hashable]]


@dataclasses.dataclass(frozen=True, slots=True)
class ListDef:
    """A named list (``lists:`` of any policy file), referenced elsewhere as ``$name``."""

    name: str
    values: tuple[Any, ...]
    doc: Document
    path: tuple[Any, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    """One value a rule names, with where it was written (a rule, or the list it came from)."""

    value: Any
    doc: Document
    path: tuple[Any, ...]

    def error(self, message: str) -> RuleError:
        return self.doc.error(self.path, message)


@dataclasses.dataclass(slots=True)
class CompileEnv:
    """Where a criterion is being compiled and what it may check its values against."""

    doc: Document
    path: tuple[Any, ...]
    lists: Mapping[str, ListDef]
    operations: Mapping[str, Resource]
    roles: frozenset[str]
    users: frozenset[str]
    errors: list[RuleError]

    def at(self, *sub: Any) -> CompileEnv:
        return dataclasses.replace(self, path=self.path + sub)

    def error(self, message: str, *sub: Any) -> None:
        self.errors.append(self.doc.error(self.path + sub, message))

    def parse(self, raw: Any, model: type[ModelT]) -> ModelT | None:
        """Validate ``raw`` (found at this env's path) with ``model``; None after reporting errors."""
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            self.errors.extend(validation_errors(self.doc, exc, self.path))
            return None

    def items(self, raw: Any, *sub: Any) -> list[Item] | None:
        """Expand a value list: ``$name``, or a list whose entries are values or ``$name`` refs.

        Returns None (after reporting) when a referenced list does not exist.
        """
        path = self.path + sub
        entries = [(raw, path)] if not isinstance(raw, list) else [(v, path + (i,)) for i, v in enumerate(raw)]
        out: list[Item] = []
        ok = True
        for value, where in entries:
            if isinstance(value, str) and value.startswith("$"):
                found = self.lists.get(value[1:])
                if found is None:
                    self.errors.append(self.doc.error(where, f"unknown list {value!r}"))
                    ok = False
                    continue
                out.extend(Item(v, found.doc, found.path + (i,)) for i, v in enumerate(found.values))
            else:
                out.append(Item(value, self.doc, where))
        return out if ok else None


class Criterion:
    """Base class of compiled criteria. Subclasses set the class attributes and implement both methods."""

    name: ClassVar[str]
    ok: ClassVar[str]
    fail: ClassVar[str]
    unknown: ClassVar[str]
    # How much a reason says about *this* request, to pick the one a denied client is told:
    # who/what selectors (role, operation) 1, identity attributes 2, request facts (time, network,
    # MFA, query) 3, geography 4.
    specificity: ClassVar[int] = 1
    # True for the criterion that is satisfied by a multi-factor step-up (see the engine).
    step_up: ClassVar[bool] = False
    # True for criteria that say *who* a rule is for (role, user). An allow rule whose caller
    # criteria rule this caller out is not for them: its failure is never their reason (see the engine).
    caller: ClassVar[bool] = False

    @classmethod
    def compile(cls, raw: Any, env: CompileEnv) -> Criterion | None:
        """Validate the criterion's value and build it; report problems to ``env`` and return None."""
        raise NotImplementedError

    def evaluate(self, ctx: RequestContext) -> Outcome:
        raise NotImplementedError

    def facts(self) -> tuple[Fact, ...] | None:
        """Every fact ``evaluate`` reads: two requests with equal values of these facts get the same
        outcome. None (the default) says "not declared": the decisions of every operation this
        criterion takes part in are then never cached (fail closed: a forgotten declaration costs
        speed, never a wrong answer)."""
        return None


class Membership(StrictModel):
    """``{in: [...]}`` or ``{not_in: [...]}`` (exactly one); values or ``$list`` references."""

    # Criterion arguments have always accepted an aliased key by its Python name too (``in_``).
    model_config = ConfigDict(populate_by_name=True)

    in_: str | list[Any] | None = Field(default=None, alias="in")
    not_in: str | list[Any] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Membership:
        if (self.in_ is None) == (self.not_in is None):
            raise ValueError("give exactly one of 'in' or 'not_in'")
        return self

    @property
    def negated(self) -> bool:
        return self.in_ is None

    @property
    def raw(self) -> tuple[str, Any]:
        return ("not_in", self.not_in) if self.negated else ("in", self.in_)


def membership_values(
    raw: Any, env: CompileEnv, check: Callable[[Item], Any | None]
) -> tuple[bool, frozenset[Any]] | None:
    """Parse a Membership block and convert each value with ``check`` (None: reported as invalid).

    Returns ``(negated, values)`` or None when anything was wrong.
    """
    spec = env.parse(raw, Membership)
    if spec is None:
        return None
    key, values = spec.raw
    items = env.items(values, key)
    if items is None:
        return None
    if not items:
        env.error(f"'{key}' needs at least one value", key)
        return None
    converted = [check(item) for item in items]
    if any(c is None for c in converted):
        return None
    return spec.negated, frozenset(converted)


def known(item: Item, universe: Iterable[str], what: str, env: CompileEnv) -> str | None:
    """``item.value`` if it is one of ``universe``, else report ``unknown <what>``."""
    value = item.value
    if isinstance(value, str) and value in universe:
        return value
    env.errors.append(item.error(f"unknown {what} {value!r}"))
    return None
