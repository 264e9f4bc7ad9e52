"""The decision cache (gateway.policy.cache): reused only when every fact the rules read is equal.

Each test decides twice: once to fill the cache, once with one fact changed; the second decision
must be what a fresh engine (no cache) decides.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.model import RequestContext
from gateway.policy import PolicyEngine
from gateway.policy.cache import readers_of
from gateway.policy.compiled import CompiledGrant, CompiledPolicy, CompiledRule, OperationRules
from gateway.policy.conditions import Leaf
from gateway.policy.criteria.base import Fact
from gateway.policy.criteria.role import RoleCriterion
from gateway.ruleset import load_ruleset
from gateway.rulestore import RuleStore

from .factories import make_ctx, make_engine, rule

REPO_RULES = Path(__file__).resolve().parents[2] / "rules"
OFFICE = rule(
    "reps-office-hours",
    'allow: {and: [{role: {in: [sales_rep]}}, {time_window: {timezone: Europe/Paris, from: "09:00", to: "18:00"}}]}',
)
GRANT = """\
format: crmgw.rules/v1
grants:
  - id: grant-carol-view
    user: carol
    operations: [customers.view]
    until: "2026-11-24T10:00:30+01:00"
    data_scope: own
    reason: ticket SEC-1
"""


def fresh(engine: PolicyEngine) -> PolicyEngine:
    return PolicyEngine(engine.policy, engine.revision, cache_size=0)


def test_a_repeated_request_is_answered_from_the_cache():
    engine = make_engine(OFFICE)
    first = engine.decide(make_ctx())
    again = engine.decide(make_ctx())
    assert again is first
    assert engine.cache.hits == 1


def test_another_minute_inside_the_window_reuses_the_decision_of_that_minute_only():
    engine = make_engine(OFFICE)
    engine.decide(make_ctx(now="2026-11-24T17:59:00+01:00"))
    late = engine.decide(make_ctx(now="2026-11-24T17:59:59.999+01:00"))
    closed = engine.decide(make_ctx(now="2026-11-24T18:00:00+01:00"))
    assert late.allowed and engine.cache.hits == 1
    assert closed.reason == "time-window-outside"


def test_a_window_boundary_inside_an_hour_is_not_hidden_by_the_cache():
    engine = make_engine(OFFICE.replace('from: "09:00"', 'from: "09:30"'))
    before = engine.decide(make_ctx(now="2026-11-24T09:29:59+01:00"))
    opened = engine.decide(make_ctx(now="2026-11-24T09:30:00+01:00"))
    assert before.reason == "time-window-outside"
    assert opened.allowed


def test_a_fact_no_rule_reads_does_not_split_the_cache():
    engine = make_engine(OFFICE)  # no rule reads the country or the query
    engine.decide(make_ctx(country="FR"))
    engine.decide(make_ctx(country="KP", query={"page": "2"}))
    assert engine.cache.hits == 1


def test_a_fact_a_rule_reads_splits_the_cache():
    engine = make_engine(rule("no-kp", "deny: {country: {in: [KP]}}"), OFFICE)
    engine.decide(make_ctx(country="FR"))
    refused = engine.decide(make_ctx(country="KP"))
    assert engine.cache.hits == 0
    assert refused == fresh(engine).decide(make_ctx(country="KP"))
    assert refused.reason == "country-denied"


def test_a_grant_lapses_on_the_second_its_until_says():
    engine = make_engine(OFFICE, grants=GRANT)
    during = engine.decide(make_ctx(user="carol", now="2026-11-24T10:00:29+01:00"))
    after = engine.decide(make_ctx(user="carol", now="2026-11-24T10:00:30+01:00"))  # the same minute
    assert during.allowed and "grant-carol-view" in during.rules
    assert "grant-carol-view" not in after.rules
    assert after == fresh(engine).decide(make_ctx(user="carol", now="2026-11-24T10:00:30+01:00"))


def test_an_approved_access_request_is_seen_by_the_next_request_and_its_revocation_too():
    engine = make_engine(rule("view-own", "allow: {role: {in: [admin]}}"))
    approved = CompiledGrant(
        id="access-42",
        user="alice",
        operations=frozenset({"customers.view"}),
        until=datetime.fromisoformat("2026-11-25T00:00:00+01:00"),
        start=None,
        scope="own",
        reason="access request 42",
    )
    assert not engine.decide(make_ctx()).allowed
    assert engine.decide(make_ctx(), (approved,)).rules == ("access-42",)
    assert not engine.decide(make_ctx()).allowed
    narrower = dataclasses.replace(approved, until=approved.until - timedelta(days=1))  # re-issued, lapsed
    assert not engine.decide(make_ctx(), (narrower,)).allowed


def test_a_criterion_that_does_not_declare_its_facts_is_never_cached():
    class Undeclared(RoleCriterion):
        def facts(self) -> tuple[Fact, ...] | None:
            return None

    leaf = Leaf(Undeclared(False, frozenset({"sales_rep"})), good=True)
    allow = CompiledRule("undeclared", "t", "allow", "enforce", frozenset({"customers.view"}), leaf, leaves=(leaf,))
    policy = CompiledPolicy({"customers.view": OperationRules(allows=(allow,))}, {"undeclared": allow}, {})
    engine = PolicyEngine(policy)
    engine.decide(make_ctx())
    engine.decide(make_ctx())
    assert engine.cache.hits == 0 and len(engine.cache) == 0


def test_the_cache_is_bounded_and_drops_the_least_recently_used():
    engine = make_engine(rule("by-ip", "allow: {source_ip: {in: [10.0.0.0/8]}}"))
    engine.cache.size = 2
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.3"):  # .1 used again: .2 is the oldest
        engine.decide(make_ctx(ip=ip))
    assert len(engine.cache) == 2
    engine.decide(make_ctx(ip="10.0.0.1"))
    assert engine.cache.hits == 2
    engine.decide(make_ctx(ip="10.0.0.2"))
    assert engine.cache.hits == 2


def _ctx(store: RuleStore, **kwargs: Any) -> RequestContext:
    # the shipped catalogue's endpoint for customers.view, from the loaded rules
    ctx = make_ctx("customers.view", "alice", **kwargs)
    endpoint = store.current.catalogue.endpoint_for("customers.view", "GET")
    return dataclasses.replace(
        ctx,
        endpoint=endpoint,
        identity=dataclasses.replace(
            ctx.identity,
            user=store.current.directory.users["alice"],  # type: ignore[union-attr]
        ),
    )


def test_a_rules_reload_is_seen_by_the_next_decision(tmp_path: Path):
    root = tmp_path / "rules"
    shutil.copytree(REPO_RULES, root, ignore=shutil.ignore_patterns("tests"))
    store, errors = RuleStore.open(root)
    assert store is not None, errors
    assert store.current.engine.decide(_ctx(store)).allowed
    assert store.current.engine.decide(_ctx(store)).allowed  # now cached
    wall = root / "policies" / "05-wall.yaml"
    wall.write_text(rule("wall", "deny: {role: {in: [sales_rep]}}"))
    store.check()
    assert store.check() is True
    denied = store.current.engine.decide(_ctx(store))
    assert not denied.allowed and denied.rules[0] == "wall"


def test_every_operation_of_the_example_rules_is_cacheable():
    ruleset, errors = load_ruleset(REPO_RULES)
    assert ruleset is not None, errors
    for operation in ruleset.catalogue.operations:
        assert readers_of(ruleset.engine.policy.for_operation(operation)) is not None, operation
