"""``query: {param: page_size, lte: 200}`` -- a query-string parameter of the request.

Operators (all given must hold): ``gte``/``lte`` (integers), ``in``/``not_in`` (strings), or
``absent: true|false`` alone. A parameter that is absent or not an integer makes ``gte``/``lte``
False -- the request is fully known, so this is not a missing fact. Shipped rules therefore write
"page size within bounds" as ``absent: true`` OR ``gte/lte``, and deny what is not: a garbled value
is refused rather than passed to the CRM.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ConfigDict, Field, StrictBool, StrictInt, model_validator

from gateway.model import RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria.base import CompileEnv, Criterion, Fact, Outcome
from gateway.rulefile import StrictModel

INTEGER = re.compile(r"^[+-]?[0-9]{1,18}$")


class QueryArgs(StrictModel):
    model_config = ConfigDict(populate_by_name=True)  # ``in_`` too, like Membership

    param: str = Field(min_length=1)
    gte: StrictInt | None = None
    lte: StrictInt | None = None
    in_: list[str] | None = Field(default=None, alias="in", min_length=1)
    not_in: list[str] | None = Field(default=None, min_length=1)
    absent: StrictBool | None = None

    @model_validator(mode="after")
    def _shape(self) -> QueryArgs:
        given = [k for k in ("gte", "lte", "in_", "not_in") if getattr(self, k) is not None]
        if self.absent is not None and given:
            raise ValueError("'absent' cannot be combined with other operators")
        if self.absent is None and not given:
            raise ValueError("give at least one of gte, lte, in, not_in or absent")
        if self.gte is not None and self.lte is not None and self.gte > self.lte:
            raise ValueError(f"gte {self.gte} is greater than lte {self.lte}: nothing can match")
        return self


@register
class QueryCriterion(Criterion):
    name = "query"
    ok, fail, unknown = "query-ok", "query-out-of-bounds", "query-unknown"
    specificity = 3

    def __init__(self, args: QueryArgs):
        self.param = args.param
        self.gte, self.lte, self.absent = args.gte, args.lte, args.absent
        self.in_ = frozenset(args.in_) if args.in_ is not None else None
        self.not_in = frozenset(args.not_in) if args.not_in is not None else None

    @classmethod
    def compile(cls, raw: Any, env: CompileEnv) -> Criterion | None:
        args = env.parse(raw, QueryArgs)
        return cls(args) if args is not None else None

    def facts(self) -> tuple[Fact, ...]:
        param = self.param
        return ((f"query:{param}", lambda ctx: ctx.query.get(param)),)

    def evaluate(self, ctx: RequestContext) -> Outcome:
        value = ctx.query.get(self.param)
        if self.absent is not None:
            return (value is None) == self.absent
        if value is None:
            return False
        if self.in_ is not None and value not in self.in_:
            return False
        if self.not_in is not None and value in self.not_in:
            return False
        if self.gte is not None or self.lte is not None:
            if not INTEGER.match(value):
                return False
            number = int(value)
            if self.gte is not None and number < self.gte:
                return False
            if self.lte is not None and number > self.lte:
                return False
        return True
