"""The signals stage and the scorer are the parts gateway.services expects (SignalsPart, ScoringPart).

mypy checks the assignments in gateway.app; this checks at run time, cheaply, that every member of
the protocols is there on the real objects, with the protocol's parameters and sync/async kind.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

import pytest

from gateway.scoring import ScoringConfig, build_scorer
from gateway.services import ScoringPart, SignalsPart
from gateway.signals import SignalsConfig, build_signals
from tests.signals.factories import T0, CollectingSink


def protocol_members(proto: type) -> set[str]:
    """The public names a Protocol declares, its protocol bases' included (3.13 has
    typing.get_protocol_members)."""
    names: set[str] = set()
    for base in proto.__mro__:
        if base is Protocol or not getattr(base, "_is_protocol", False):
            continue
        names |= {n for n in (*vars(base), *getattr(base, "__annotations__", {})) if not n.startswith("_")}
    return names


def params(function: Any) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values() if p.name != "self"]


def assert_conforms(part: object, proto: type) -> None:
    for name in protocol_members(proto):
        found = getattr(part, name, None)
        assert callable(found), f"{type(part).__name__}.{name} is missing"
        wanted = getattr(proto, name)
        assert inspect.iscoroutinefunction(found) == inspect.iscoroutinefunction(wanted), name
        assert params(found) == params(wanted), name


def test_the_protocols_list_what_the_services_call():
    assert protocol_members(SignalsPart) == {"check", "submit", "start", "stop", "drain", "health", "row_budget"}
    assert protocol_members(ScoringPart) == {"submit", "start", "stop", "drain", "health"}


@pytest.mark.parametrize("redis_url", [None, "redis://127.0.0.1:1/0"])  # the client connects on first use
def test_the_signals_stage_is_a_signals_part(redis_url):
    backend = "redis" if redis_url else "memory"
    stage = build_signals(SignalsConfig(backend=backend), redis_url=redis_url, alerts=CollectingSink())
    assert_conforms(stage, SignalsPart)


def test_the_scorer_is_a_scoring_part():
    scorer = build_scorer(ScoringConfig(), alerts=CollectingSink(), clock=lambda: T0)
    assert_conforms(scorer, ScoringPart)
