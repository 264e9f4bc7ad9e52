from __future__ import annotations

import pytest

from gateway.model import Identity

from ..factories import make_criterion, make_ctx, make_engine, make_user, rule, try_criterion


def caller(method: str, user: str = "alice") -> Identity:
    return Identity(make_user(user), method)


@pytest.mark.parametrize(
    ("text", "method", "expected"),
    [
        ("auth_method: {in: [crm_jwt, crm_token]}", "crm_jwt", True),
        ("auth_method: {in: [crm_jwt, crm_token]}", "crm_token", True),
        ("auth_method: {in: [crm_jwt, crm_token]}", "jwt", False),
        ("auth_method: {in: [crm_jwt, crm_token]}", "api_key", False),
        ("auth_method: {in: [crm_jwt, crm_token]}", "trusted_header", False),
        ("auth_method: {not_in: [api_key]}", "api_key", False),
        ("auth_method: {not_in: [api_key]}", "jwt", True),
        # crmgw explain describes a user, not a credential: a missing fact
        ("auth_method: {in: [jwt]}", "explain", None),
        ("auth_method: {not_in: [jwt]}", "explain", None),
    ],
)
def test_in_not_in(text, method, expected):
    assert make_criterion(text).evaluate(make_ctx(user=caller(method))) is expected


def test_no_identity_is_unknown():
    assert make_criterion("auth_method: {in: [jwt]}").evaluate(make_ctx(user=None)) is None


def test_lists_are_allowed():
    criterion = make_criterion("auth_method: {in: $crm_logins}", lists={"crm_logins": ["crm_jwt", "crm_token"]})
    assert criterion.evaluate(make_ctx(user=caller("crm_token"))) is True


@pytest.mark.parametrize("value", ["sso", "JWT", "bearer", 1])
def test_unknown_method_is_refused_with_the_known_ones(value):
    criterion, errors = try_criterion(f"auth_method: {{in: [{value}]}}")
    assert criterion is None
    assert str(errors[0]).endswith(
        f"unknown authentication method {value!r}; use one of jwt, api_key, trusted_header, crm_jwt, crm_token"
    )


WIDER_WITH_CRM_LOGIN = rule(
    "crm-login-sees-all",
    "allow: {and: [{role: {in: [sales_rep]}}, {auth_method: {in: [crm_jwt, crm_token]}}]}",
    ops="customers.list",
    extra="data_scope: {sales_rep: all}",
)
OWN_OTHERWISE = rule(
    "reps-see-own", "allow: {role: {in: [sales_rep]}}", ops="customers.list", extra="data_scope: {sales_rep: own}"
)


@pytest.mark.parametrize(
    ("method", "scope", "rules"),
    [
        ("crm_token", "all", ("crm-login-sees-all", "reps-see-own")),
        ("crm_jwt", "all", ("crm-login-sees-all", "reps-see-own")),
        ("jwt", "own", ("reps-see-own",)),
        ("api_key", "own", ("reps-see-own",)),
    ],
)
def test_wider_scope_only_with_the_crms_own_credential(method, scope, rules):
    decision = make_engine(WIDER_WITH_CRM_LOGIN, OWN_OTHERWISE).decide(make_ctx("customers.list", caller(method)))
    assert (decision.effect, decision.obligations.scope, tuple(sorted(decision.rules))) == ("allow", scope, rules)


def trace_reasons(decision, rule_id: str) -> list[str]:
    (trace,) = [t for t in decision.trace if t.rule == rule_id]
    return [c.reason for c in trace.criteria]


def test_reasons_in_the_trace():
    engine = make_engine(WIDER_WITH_CRM_LOGIN, OWN_OTHERWISE)
    granted = engine.decide(make_ctx("customers.list", caller("crm_jwt")))
    assert "auth-method-ok" in trace_reasons(granted, "crm-login-sees-all")
    assert "auth-method-ok" in granted.reasons
    narrower = engine.decide(make_ctx("customers.list", caller("jwt")))
    assert "auth-method-unauthorized" in trace_reasons(narrower, "crm-login-sees-all")


def test_denial_names_the_authentication_method():
    only_crm = rule(
        "deletes-with-crm-login",
        "allow: {and: [{role: {in: [sales_rep]}}, {auth_method: {in: [crm_jwt, crm_token]}}]}",
        ops="customers.delete",
        extra="data_scope: {sales_rep: own}",
    )
    decision = make_engine(only_crm).decide(make_ctx("customers.delete", caller("jwt")))
    assert (decision.effect, decision.reason) == ("deny", "auth-method-unauthorized")
    assert make_engine(only_crm).decide(make_ctx("customers.delete", caller("crm_token"))).allowed
