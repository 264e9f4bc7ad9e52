"""Condition blocks: ``and`` / ``or`` / ``not`` over criteria, in three-valued (Kleene) logic.

    and: [True, None]  -> None     or: [False, None] -> None     not: None -> None
    and: [False, None] -> False    or: [True, None]  -> True

Every child is evaluated (no short-circuit) so that a decision can list the reason of every
criterion; criteria are cheap. Each leaf knows at compile time which raw result *favours access*
(``good``): True inside an allow block, False inside a deny block, flipped by each ``not``. That
turns raw results into reasons that read right in both places: ``country: {in: $denied}`` in a
deny block that sees KP says ``country-denied``; ``not: {source_ip: {in: $office}}`` in a deny
block that sees an outside address says ``source-ip-unauthorized``.

Besides evaluating, a block can *fold* other leaf values through the same logic (the engine asks
"could this rule grant this caller?" with every fact but the caller's own set to unknown) and
*outline* itself for ``crmgw explain`` and the console: the and/or/not tree with every node's value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gateway.model import CriterionTrace, RequestContext
from gateway.policy.criteria import REGISTRY, RESERVED
from gateway.policy.criteria.base import CompileEnv, Criterion, Outcome

# Raw results of a block's leaves, in the (fixed) order of ``Node.leaves()``: nothing short-circuits.
Evaluated = list[Outcome]


def kleene_and(values: Iterable[Outcome]) -> Outcome:
    values = list(values)  # consume every value: each belongs to a leaf
    return False if False in values else None if None in values else True


def kleene_or(values: Iterable[Outcome]) -> Outcome:
    values = list(values)
    return True if True in values else None if None in values else False


def kleene_not(value: Outcome) -> Outcome:
    return None if value is None else not value


class Node:
    __slots__ = ()

    def eval(self, ctx: RequestContext, out: Evaluated) -> Outcome:
        raise NotImplementedError

    def leaves(self) -> Iterator[Leaf]:
        return iter(())

    def fold(self, values: Iterator[Outcome]) -> Outcome:
        """The block's value for these leaf values (one per leaf, in ``leaves()`` order)."""
        raise NotImplementedError

    def outline(self, traces: Iterator[CriterionTrace]) -> dict[str, Any]:
        """The tree with each node's value: ``{op, result, children}``, leaves ``{criterion, result,
        reason}``; ``traces`` gives each leaf's trace in ``leaves()`` order."""
        raise NotImplementedError


class Leaf(Node):
    __slots__ = ("caller", "criterion", "good", "specificity", "step_up", "traces")

    def __init__(self, criterion: Criterion, good: bool):
        self.criterion = criterion
        self.good = good
        self.specificity = criterion.specificity
        self.step_up = criterion.step_up
        self.caller = criterion.caller
        name, ok, fail = criterion.name, criterion.ok, criterion.fail
        # Prebuilt so evaluation allocates nothing.
        self.traces: dict[Outcome, CriterionTrace] = {
            True: CriterionTrace(name, True, ok if good else fail),
            False: CriterionTrace(name, False, fail if good else ok),
            None: CriterionTrace(name, None, criterion.unknown),
        }

    def eval(self, ctx: RequestContext, out: Evaluated) -> Outcome:
        result = self.criterion.evaluate(ctx)
        out.append(result)
        return result

    def bad(self, result: Outcome) -> bool:
        """This result stands in the way of access (a missing fact always does)."""
        return result is not self.good

    def leaves(self) -> Iterator[Leaf]:
        yield self

    def fold(self, values: Iterator[Outcome]) -> Outcome:
        return next(values)

    def outline(self, traces: Iterator[CriterionTrace]) -> dict[str, Any]:
        trace = next(traces)
        return {"criterion": trace.criterion, "result": trace.result, "reason": trace.reason}


class And(Node):
    __slots__ = ("children",)

    def __init__(self, children: list[Node]):
        self.children = tuple(children)

    def eval(self, ctx: RequestContext, out: Evaluated) -> Outcome:
        result: Outcome = True
        for child in self.children:
            value = child.eval(ctx, out)
            if value is False:
                result = False
            elif value is None and result is True:
                result = None
        return result

    def leaves(self) -> Iterator[Leaf]:
        for child in self.children:
            yield from child.leaves()

    op, combine = "and", staticmethod(kleene_and)

    def fold(self, values: Iterator[Outcome]) -> Outcome:
        return self.combine(child.fold(values) for child in self.children)

    def outline(self, traces: Iterator[CriterionTrace]) -> dict[str, Any]:
        children = [child.outline(traces) for child in self.children]
        return {"op": self.op, "result": self.combine(c["result"] for c in children), "children": children}


class Or(And):
    __slots__ = ()
    op, combine = "or", staticmethod(kleene_or)

    def eval(self, ctx: RequestContext, out: Evaluated) -> Outcome:
        result: Outcome = False
        for child in self.children:
            value = child.eval(ctx, out)
            if value is True:
                result = True
            elif value is None and result is False:
                result = None
        return result


class Not(Node):
    __slots__ = ("child",)

    def __init__(self, child: Node):
        self.child = child

    def eval(self, ctx: RequestContext, out: Evaluated) -> Outcome:
        value = self.child.eval(ctx, out)
        return None if value is None else not value

    def leaves(self) -> Iterator[Leaf]:
        return self.child.leaves()

    def fold(self, values: Iterator[Outcome]) -> Outcome:
        return kleene_not(self.child.fold(values))

    def outline(self, traces: Iterator[CriterionTrace]) -> dict[str, Any]:
        child = self.child.outline(traces)
        return {"op": "not", "result": kleene_not(child["result"]), "children": [child]}


class Always(Node):
    """``deny: true`` -- an unconditional deny (there is no unconditional allow)."""

    __slots__ = ()

    def eval(self, ctx: RequestContext, out: Evaluated) -> Outcome:
        return True

    def fold(self, values: Iterator[Outcome]) -> Outcome:
        return True

    def outline(self, traces: Iterator[CriterionTrace]) -> dict[str, Any]:
        return {"op": "always", "result": True, "children": []}


def known_criteria() -> str:
    return ", ".join(sorted(REGISTRY))


def build(raw: Any, env: CompileEnv, good: bool) -> Node | None:
    """Compile one condition (a single-key mapping) found at ``env.path``; None after reporting."""
    if not isinstance(raw, dict) or len(raw) != 1:
        env.error(f"a condition is a mapping with exactly one key: and, or, not, or a criterion ({known_criteria()})")
        return None
    key, value = next(iter(raw.items()))
    sub = env.at(key)
    if key in ("and", "or"):
        if not isinstance(value, list) or not value:
            sub.error(f"'{key}' takes a non-empty list of conditions")
            return None
        children = [build(item, sub.at(i), good) for i, item in enumerate(value)]
        if any(child is None for child in children):
            return None
        return And(children) if key == "and" else Or(children)  # type: ignore[arg-type]
    if key == "not":
        child = build(value, sub, not good)
        return Not(child) if child is not None else None
    cls = REGISTRY.get(key)
    if cls is None or key in RESERVED:
        sub.error(f"unknown criterion {key!r} (known: and, or, not, {known_criteria()})")
        return None
    criterion = cls.compile(value, sub)
    return Leaf(criterion, good) if criterion is not None else None
