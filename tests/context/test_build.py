"""build_context: a target is normalised and routed once per catalogue, refusals every time."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.context.build import build_context
from gateway.errors import BadRequest
from gateway.model import RequestContext
from gateway.ruleset import RuleSet, load_ruleset

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    loaded, errors = load_ruleset(RULES)
    assert loaded is not None, errors
    return loaded


def build(ruleset: RuleSet, target: str, method: str = "GET") -> RequestContext:
    ctx, _ = build_context(
        ruleset,
        request_id="r",
        method=method,
        raw_target=target,
        client_ip=None,
        country=None,
        now=datetime(2026, 3, 3, 9, 0, tzinfo=UTC),
        identity=None,
    )
    return ctx


def test_a_repeated_target_gives_the_same_context_as_the_first_time(ruleset: RuleSet):
    first = build(ruleset, "/api/customers/7?fields=name")
    again = build(ruleset, "/api/customers/7?fields=name")
    assert ("GET", "/api/customers/7?fields=name") in ruleset.catalogue.targets
    assert again == first
    assert again.endpoint is not None and again.path_params == {"id": "7"} and again.query == {"fields": "name"}


def test_the_method_is_part_of_what_is_remembered(ruleset: RuleSet):
    build(ruleset, "/api/customers/8")
    deleted = build(ruleset, "/api/customers/8", method="DELETE")
    assert deleted.endpoint is not None and deleted.endpoint.action == "delete"


def test_a_refused_target_is_refused_every_time_and_never_remembered(ruleset: RuleSet):
    for _ in range(2):
        with pytest.raises(BadRequest):
            build(ruleset, "/api/customers/1?_method=DELETE")
    assert ("GET", "/api/customers/1?_method=DELETE") not in ruleset.catalogue.targets


def test_a_reloaded_catalogue_starts_with_nothing_remembered(ruleset: RuleSet):
    build(ruleset, "/api/customers/9")
    reloaded, _ = load_ruleset(RULES)
    assert reloaded is not None and reloaded.catalogue.targets == {}
    assert dataclasses.replace(build(reloaded, "/api/customers/9"), request_id="r") == build(
        ruleset, "/api/customers/9"
    )
