"""The shipped rules/policies/*.yaml and rules/grants.yaml express the demo policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.model import Mask
from gateway.policy import PolicyEngine, compile_policies
from gateway.rulefile import load_yaml

from .factories import OPERATIONS, ROLES, USERS, make_ctx

RULES = Path(__file__).resolve().parents[2] / "rules"
PARTNER_IP, EXTERNAL_IP = "198.51.100.7", "203.0.113.5"
EVENING = "2026-11-24T20:00:00+01:00"


def load():
    docs, errors = [], []
    for path in sorted((RULES / "policies").glob("*.yaml")):
        doc, errs = load_yaml(path, f"policies/{path.name}")
        errors += errs
        docs.append(doc)
    grants, errs = load_yaml(RULES / "grants.yaml", "grants.yaml")
    errors += errs
    policy, errs = compile_policies(docs, grants, operations=OPERATIONS, roles=set(ROLES), users=set(USERS))
    return policy, errors + errs


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    policy, errors = load()
    assert policy is not None and errors == [], [str(e) for e in errors]
    return PolicyEngine(policy, revision="shipped")


def test_shipped_rules_compile_without_errors():
    assert load()[1] == []


@pytest.mark.parametrize(
    ("operation", "user", "kwargs", "effect", "reason", "scope"),
    [
        # sales: own / team / all, customers only in office hours for reps
        ("customers.view", "alice", {}, "allow", "allowed", "own"),
        ("customers.view", "alice", {"now": EVENING}, "deny", "time-window-outside", None),
        ("customers.list", "alice", {"now": "2026-11-28T10:00:00+01:00"}, "deny", "time-window-outside", None),
        ("customers.list", "dave", {"now": EVENING}, "allow", "allowed", "team"),
        ("customers.view", "grace", {"now": EVENING}, "allow", "allowed", "all"),
        ("deals.view", "alice", {"now": EVENING}, "allow", "allowed", "own"),
        ("customers.create", "alice", {}, "allow", "allowed", "own"),
        ("contacts.update", "erin", {}, "allow", "allowed", "team"),
        ("customers.import", "alice", {}, "deny", "default-deny", None),
        ("customers.import", "grace", {}, "allow", "allowed", "all"),
        # delete: managers (team) and admins; a rep's delete is refused by no rule in particular
        ("customers.delete", "alice", {}, "deny", "default-deny", None),
        ("deals.delete", "dave", {}, "allow", "allowed", "team"),
        ("contacts.delete", "grace", {}, "allow", "allowed", "all"),
        # support reads customers and contacts only
        ("contacts.view", "frank", {}, "allow", "allowed", "all"),
        ("deals.view", "frank", {}, "deny", "default-deny", None),
        ("customers.update", "frank", {}, "deny", "default-deny", None),
        ("customers.view", "heidi", {}, "deny", "default-deny", None),
        # mass listing
        ("customers.list", "alice", {"query": {"page_size": "200"}}, "allow", "allowed", "own"),
        ("customers.list", "alice", {"query": {"page_size": "500"}}, "deny", "query-out-of-bounds", None),
        ("deals.list", "dave", {"query": {"page_size": "abc"}}, "deny", "query-out-of-bounds", None),
        ("customers.list", "grace", {"query": {"page_size": "1000"}}, "allow", "allowed", "all"),
        # exports: admins with MFA, reporting from the office, alice by grant
        ("customers.export", "grace", {}, "deny", "mfa-required", None),
        ("customers.export", "grace", {"mfa": True}, "allow", "allowed", "all"),
        ("customers.export", "svc-reporting", {}, "allow", "allowed", "all"),
        ("customers.export", "svc-reporting", {"ip": PARTNER_IP}, "deny", "source-ip-unauthorized", None),
        ("customers.export", "alice", {}, "allow", "allowed", "own"),
        ("customers.export", "alice", {"now": "2027-02-15T10:00:00+01:00"}, "deny", "default-deny", None),
        ("customers.export", "bob", {}, "deny", "default-deny", None),
        ("customers.export", "dave", {"mfa": True}, "deny", "default-deny", None),
        # administration
        ("admin.admin", "grace", {}, "deny", "mfa-required", None),
        ("admin.admin", "grace", {"mfa": True}, "allow", "allowed", "all"),
        ("admin.admin", "dave", {"mfa": True}, "deny", "default-deny", None),
        # networks and countries
        ("customers.view", "alice", {"ip": PARTNER_IP}, "allow", "allowed", "own"),
        ("customers.view", "alice", {"ip": "::1"}, "allow", "allowed", "own"),
        ("customers.view", "grace", {"ip": EXTERNAL_IP, "country": "FR"}, "deny", "source-ip-unauthorized", None),
        ("customers.view", "grace", {"ip": "5.5.5.5", "country": "RU"}, "deny", "country-denied", None),
        ("customers.view", "grace", {"ip": EXTERNAL_IP, "country": None}, "deny", "country-unknown", None),
        ("customers.view", "grace", {"ip": "10.1.2.3", "country": "KP"}, "allow", "allowed", "all"),
    ],
)
def test_demo_policy(engine, operation, user, kwargs, effect, reason, scope):
    decision = engine.decide(make_ctx(operation, user, **kwargs))
    assert (decision.effect, decision.reason) == (effect, reason), decision.reasons
    if reason == "default-deny":  # no allow rule was for this caller: none is named
        assert decision.rules == ()
    if scope is not None:
        assert decision.obligations.scope == scope


def test_request_without_client_ip_is_denied(engine):
    decision = engine.decide(make_ctx("customers.view", "grace", ip=None))
    assert decision.effect == "deny"
    assert {"source-ip-unknown", "country-unknown"} <= set(decision.reasons)


def test_step_up_is_401(engine):
    assert engine.decide(make_ctx("admin.admin", "grace")).status == 401


def test_support_sees_masked_records(engine):
    decision = engine.decide(make_ctx("customers.list", "frank"))
    assert decision.obligations.masks == (
        Mask("complaints", "remove"),
        Mask("phone", "redact", 4),
        Mask("quote_price", "remove"),
    )


def test_alice_export_comes_from_her_active_grant(engine):
    decision = engine.decide(make_ctx("customers.export", "alice"))
    assert decision.rules == ("grant-alice-export-2027q1",)
    grants = {t.rule: t.criteria[0].reason for t in decision.trace if t.kind == "grant"}
    assert grants == {"grant-alice-export-2026q3": "grant-expired", "grant-alice-export-2027q1": "grant-active"}


def test_shadow_rule_reports_bulk_reads_by_support(engine):
    decision = engine.decide(make_ctx("customers.list", "frank", query={"page_size": "100"}))
    assert decision.allowed
    assert [(s.rule, s.would, s.reason) for s in decision.shadow] == [
        ("support-bulk-read-review", "deny", "query-out-of-bounds")
    ]


@pytest.mark.parametrize(
    ("utc", "effect"),
    [
        ("2026-03-27T16:30:00+00:00", "allow"),  # Friday 17:30 in Paris (UTC+1)
        ("2026-03-30T16:30:00+00:00", "deny"),  # Monday 18:30 in Paris (UTC+2 since 29 March)
        ("2026-03-30T15:59:00+00:00", "allow"),  # Monday 17:59 in Paris
    ],
)
def test_office_hours_across_the_spring_dst_change(engine, utc, effect):
    assert engine.decide(make_ctx("customers.view", "alice", now=utc)).effect == effect
