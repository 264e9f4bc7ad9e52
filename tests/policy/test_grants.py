"""Time-boxed grants: allow for one user while from <= now < until; deny rules still win."""

from __future__ import annotations

import pytest

from .factories import error_strings, make_ctx, make_engine, rule

DENY_KP = rule("deny-kp", "deny: {country: {in: [KP]}}", "'*'")
GRANTS = """\
format: crmgw.rules/v1
grants:
  - id: grant-alice-export
    user: alice
    operations: [customers.export]
    from: "2026-11-01T00:00:00+01:00"
    until: "2027-01-31T18:00:00+01:00"
    reason: Quarterly pipeline review, ticket SEC-1042
"""


def export(user="alice", now="2026-11-24T10:00:00+01:00", country="FR", **kw):
    kw["country"] = country
    return make_engine(DENY_KP, grants=GRANTS).decide(make_ctx("customers.export", user, now=now, **kw))


def test_active_grant_allows_with_scope_own():
    decision = export()
    assert (decision.effect, decision.rules, decision.reasons) == ("allow", ("grant-alice-export",), ("grant-active",))
    assert decision.obligations.scope == "own"
    assert [(t.rule, t.kind, t.matched) for t in decision.trace][-1] == ("grant-alice-export", "grant", True)


@pytest.mark.parametrize(
    ("now", "allowed", "reason"),
    [
        ("2026-11-01T00:00:00+01:00", True, "grant-active"),  # from is inclusive
        ("2026-10-31T23:59:59+01:00", False, "grant-not-yet-active"),
        ("2027-01-31T17:59:59+01:00", True, "grant-active"),
        ("2027-01-31T17:00:00+00:00", False, "grant-expired"),  # = 18:00+01:00: until is exclusive
        ("2027-03-01T09:00:00+01:00", False, "grant-expired"),
    ],
)
def test_grant_lapses_by_itself(now, allowed, reason):
    decision = export(now=now)
    assert decision.allowed is allowed
    assert decision.trace[-1].criteria[0].reason == reason


def test_expired_grant_is_a_denial_explained_in_the_trace():
    decision = export(now="2027-03-01T09:00:00+01:00")
    assert (decision.effect, decision.reason) == ("deny", "default-deny")
    assert decision.trace[-1].rule == "grant-alice-export"


def test_deny_rules_still_win():
    decision = export(country="KP")
    assert (decision.effect, decision.reason) == ("deny", "country-denied")


def test_other_users_grants_do_not_apply_and_are_not_traced():
    decision = export(user="bob")
    assert not decision.allowed
    assert "grant-alice-export" not in [t.rule for t in decision.trace]


def test_grant_that_requires_mfa_asks_for_a_step_up():
    grants = GRANTS + "    require_mfa: true\n"
    engine = make_engine(DENY_KP, grants=grants)
    decision = engine.decide(make_ctx("customers.export", "alice", country="FR"))
    assert (decision.status, decision.reason, decision.rules) == (401, "mfa-required", ("grant-alice-export",))
    assert engine.decide(make_ctx("customers.export", "alice", country="FR", mfa=True)).allowed


def test_grant_scope_joins_rule_scopes():
    sales = rule("sales", "allow: {role: {in: [sales_rep]}}", "customers.export", "data_scope: {sales_rep: own}")
    grants = GRANTS.replace("    reason:", "    data_scope: region\n    reason:")
    decision = make_engine(sales, grants=grants).decide(make_ctx("customers.export", "alice"))
    assert decision.obligations.scope == "region"
    assert decision.rules == ("grant-alice-export", "sales")


def grant(**fields) -> str:
    base = {
        "id": "g1",
        "user": "alice",
        "operations": "[customers.export]",
        "until": '"2027-01-31T18:00:00+01:00"',
        "reason": "ticket",
    }
    base.update(fields)
    lines = [f"    {key}: {value}" for key, value in base.items() if value is not None]
    return "format: crmgw.rules/v1\ngrants:\n  - " + "\n".join(lines)[4:] + "\n"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"user": "mallory"}, "grants.yaml:4:11: unknown user 'mallory'"),
        ({"operations": "[customers.read]"}, "grants.yaml:5:18: unknown operation 'customers.read'"),
        ({"operations": "['customers.*']"}, "grants name exact operation ids"),
        ({"until": '"2027-01-31T18:00:00"'}, "grants.yaml:6:12: date-time '2027-01-31T18:00:00' needs a UTC offset"),
        ({"until": '"next friday"'}, "grants.yaml:6:12: bad date-time 'next friday'"),
        ({"until": None}, "grants.yaml:3:5: grants.0.until: Field required"),
        ({"from": '"2027-02-01T00:00:00+01:00"'}, "'until' must be later than 'from'"),
        ({"operations": "[admin.admin]"}, "data scope 'own' is not supported by resource 'admin'"),
        ({"colour": "red"}, "grants.yaml:8:5: grants.0.colour: unknown key 'colour'"),
        ({"data_scope": "planet"}, "grants.0.data_scope: Input should be"),
    ],
)
def test_grant_errors(fields, expected):
    errors = error_strings(rule("r", "allow: {role: {in: [admin]}}"), grants=grant(**fields))
    assert any(expected in e for e in errors), errors


def test_grant_id_must_not_repeat_a_rule_id():
    errors = error_strings(rule("g1", "allow: {role: {in: [admin]}}"), grants=grant())
    assert errors == ["grants.yaml:3:9: duplicate rule id 'g1' (first defined at policies/00.yaml:3)"]
