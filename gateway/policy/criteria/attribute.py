"""``attribute: {name: team, in: [east]}`` -- an identity attribute (team, region, custom ones).

Operators: ``in``, ``not_in``, or ``equals_identity: other_attribute`` (two attributes of the same
identity must be equal). A user without the attribute is ``None``: a missing fact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from gateway.model import RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria.base import CompileEnv, Criterion, Fact, Outcome
from gateway.rulefile import StrictModel

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AttributeArgs(StrictModel):
    model_config = ConfigDict(populate_by_name=True)  # ``in_`` too, like Membership

    name: str = Field(pattern=NAME.pattern)
    in_: str | list[Any] | None = Field(default=None, alias="in")
    not_in: str | list[Any] | None = None
    equals_identity: str | None = Field(default=None, pattern=NAME.pattern)

    @model_validator(mode="after")
    def _exactly_one(self) -> AttributeArgs:
        given = [k for k in ("in_", "not_in", "equals_identity") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'in', 'not_in' or 'equals_identity'")
        return self


@register
class AttributeCriterion(Criterion):
    name = "attribute"
    ok, fail, unknown = "attribute-ok", "attribute-mismatch", "attribute-unknown"
    specificity = 2

    def __init__(self, attribute: str, values: frozenset[str], negated: bool, other: str | None):
        # ``other`` set: equals_identity, and ``values`` is empty (unused).
        self.attribute = attribute
        self.values = values
        self.negated = negated
        self.other = other

    @classmethod
    def compile(cls, raw: Any, env: CompileEnv) -> Criterion | None:
        args = env.parse(raw, AttributeArgs)
        if args is None:
            return None
        if args.equals_identity is not None:
            return cls(args.name, frozenset(), False, args.equals_identity)
        key, values = ("not_in", args.not_in) if args.not_in is not None else ("in", args.in_)
        items = env.items(values, key)
        if items is None:
            return None
        bad = [item for item in items if not isinstance(item.value, str)]
        for item in bad:
            env.errors.append(item.error(f"attribute values are strings, got {item.value!r}"))
        if bad:
            return None
        if not items:
            env.error(f"'{key}' needs at least one value", key)
            return None
        return cls(args.name, frozenset(i.value for i in items), key == "not_in", None)

    def facts(self) -> tuple[Fact, ...]:
        names = (self.attribute,) if self.other is None else (self.attribute, self.other)
        return tuple((f"attribute:{name}", _reader(name)) for name in names)

    def evaluate(self, ctx: RequestContext) -> Outcome:
        if ctx.identity is None:
            return None
        value = ctx.identity.user.attribute(self.attribute)
        if value is None:
            return None
        if self.other is not None:
            other = ctx.identity.user.attribute(self.other)
            return None if other is None else value == other
        return (value in self.values) != self.negated


def _reader(name: str) -> Callable[[RequestContext], str | None]:
    def read(ctx: RequestContext) -> str | None:
        return ctx.identity.user.attribute(name) if ctx.identity is not None else None

    return read
