"""Shared shape of the ``in``/``not_in`` criteria over a set of strings taken from the request."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from gateway.model import RequestContext
from gateway.policy.criteria.base import CompileEnv, Criterion, Fact, Item, Outcome, membership_values


class SetMembership(Criterion):
    """True when the request's value (or any of its values) is in the set; ``not_in`` negates.

    Subclasses implement :meth:`facts` (the request's values, None when unknown) and :meth:`check`
    (validate one configured value).
    """

    multi: ClassVar[bool] = False  # facts() returns a set (roles) rather than one value

    def __init__(self, negated: bool, values: frozenset[Any]):
        self.negated = negated
        self.values = values

    @classmethod
    def check(cls, item: Item, env: CompileEnv) -> Any | None:
        raise NotImplementedError

    @classmethod
    def compile(cls, raw: Any, env: CompileEnv) -> Self | None:
        parsed = membership_values(raw, env, lambda item: cls.check(item, env))
        return cls(*parsed) if parsed else None

    def fact(self, ctx: RequestContext) -> Any:
        raise NotImplementedError

    def evaluate(self, ctx: RequestContext) -> Outcome:
        return self.holds(self.fact(ctx))

    def facts(self) -> tuple[Fact, ...] | None:
        # fact() is the only read of the request; every criterion of a class reads it alike.
        return ((self.name, self.fact),)

    def holds(self, fact: Any) -> Outcome:
        """The test on a fact already taken from somewhere (None: unknown). Anomaly exceptions
        (gateway.signals.anomalies) call it with a finding's facts, which are not a request."""
        if fact is None:
            return None
        hit = not self.values.isdisjoint(fact) if self.multi else fact in self.values
        return hit != self.negated
