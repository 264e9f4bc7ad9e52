"""and / or / not in Kleene logic, and reasons that read right in allow and deny blocks."""

from __future__ import annotations

import itertools

import pytest

from gateway.policy.conditions import build
from gateway.policy.criteria.base import CompileEnv

from .factories import OPERATIONS, ROLES, USERS, make_ctx, parse

# Two facts we can set independently to True / False / unknown:
A = "country: {in: [KP]}"  # True: KP, False: FR, None: no country
B = "source_ip: {in: [10.0.0.0/8]}"  # True: 10.1.1.1, False: 8.8.8.8, None: no IP
COUNTRY = {True: "KP", False: "FR", None: None}
IP = {True: "10.1.1.1", False: "8.8.8.8", None: None}
T, F, U = True, False, None

AND = {(T, T): T, (T, F): F, (T, U): U, (F, T): F, (F, F): F, (F, U): F, (U, T): U, (U, F): F, (U, U): U}
OR = {(T, T): T, (T, F): T, (T, U): T, (F, T): T, (F, F): F, (F, U): U, (U, T): T, (U, F): U, (U, U): U}
NOT = {T: F, F: T, U: U}


def compile_block(text: str, good: bool = True):
    doc = parse(text, "block.yaml")
    errors: list = []
    env = CompileEnv(doc, (), {}, OPERATIONS, frozenset(ROLES), frozenset(USERS), errors)
    node = build(doc.data, env, good=good)
    assert node is not None, [str(e) for e in errors]
    return node


def evaluate(node, a, b):
    out: list = []
    return node.eval(make_ctx(country=COUNTRY[a], ip=IP[b]), out), out


@pytest.mark.parametrize(("a", "b"), list(itertools.product((T, F, U), repeat=2)))
def test_and(a, b):
    assert evaluate(compile_block(f"and: [{{{A}}}, {{{B}}}]"), a, b)[0] is AND[(a, b)]


@pytest.mark.parametrize(("a", "b"), list(itertools.product((T, F, U), repeat=2)))
def test_or(a, b):
    assert evaluate(compile_block(f"or: [{{{A}}}, {{{B}}}]"), a, b)[0] is OR[(a, b)]


@pytest.mark.parametrize("a", [T, F, U])
def test_not(a):
    assert evaluate(compile_block(f"not: {{{A}}}"), a, T)[0] is NOT[a]


def test_every_child_is_evaluated_for_the_trace():
    value, results = evaluate(compile_block(f"and: [{{{A}}}, {{{B}}}]"), F, T)
    assert value is False
    assert results == [False, True]


@pytest.mark.parametrize(
    ("text", "good", "country", "reason"),
    [
        (A, True, "KP", "country-ok"),  # allow block: True favours access
        (A, True, "FR", "country-denied"),
        (A, False, "KP", "country-denied"),  # deny block: True is what denies
        (A, False, "FR", "country-ok"),
        (f"not: {{{A}}}", False, "FR", "country-denied"),  # deny + not: False is what denies
        (A, False, None, "country-unknown"),
    ],
)
def test_reason_follows_where_the_criterion_sits(text, good, country, reason):
    node = compile_block(text, good=good)
    leaf = next(node.leaves())
    out: list = []
    node.eval(make_ctx(country=country), out)
    assert leaf.traces[out[0]].reason == reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{and: []}", "'and' takes a non-empty list"),
        ("{or: {role: {in: [admin]}}}", "'or' takes a non-empty list"),
        ("{colour: {in: [red]}}", "unknown criterion 'colour'"),
        ("{role: {in: [admin]}, mfa: true}", "exactly one key"),
        ("[role]", "exactly one key"),
    ],
)
def test_structure_errors(text, message):
    doc = parse(text, "block.yaml")
    errors: list = []
    env = CompileEnv(doc, (), {}, OPERATIONS, frozenset(ROLES), frozenset(USERS), errors)
    assert build(doc.data, env, good=True) is None
    assert message in str(errors[0])


BLOCKS = [f"and: [{{{A}}}, {{{B}}}]", f"or: [{{{A}}}, {{not: {{{B}}}}}]", f"not: {{and: [{{{A}}}, {{{B}}}]}}"]


@pytest.mark.parametrize("text", BLOCKS)
@pytest.mark.parametrize(("a", "b"), list(itertools.product((T, F, U), repeat=2)))
def test_fold_replays_the_leaf_values_through_the_same_logic(text, a, b):
    node = compile_block(text)
    value, results = evaluate(node, a, b)
    assert node.fold(iter(results)) is value


def test_outline_shows_every_node_with_its_value_and_the_not_around_a_criterion():
    node = compile_block(f"and: [{{{A}}}, {{not: {{{B}}}}}]", good=False)  # a deny block
    out: list = []
    node.eval(make_ctx(country="FR", ip="8.8.8.8"), out)
    traces = [leaf.traces[r] for leaf, r in zip(node.leaves(), out)]
    assert node.outline(iter(traces)) == {
        "op": "and",
        "result": False,
        "children": [
            {"criterion": "country", "result": False, "reason": "country-ok"},
            {
                "op": "not",
                "result": True,
                "children": [
                    {"criterion": "source_ip", "result": False, "reason": "source-ip-unauthorized"},
                ],
            },
        ],
    }
