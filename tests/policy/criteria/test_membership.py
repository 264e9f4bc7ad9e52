"""role / user / operation / action / method / mfa: in and not_in over one request fact."""

from __future__ import annotations

import dataclasses

import pytest

from ..factories import make_criterion, make_ctx, make_identity, try_criterion


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        ("role: {in: [sales_rep]}", "alice", True),
        ("role: {in: [sales_rep]}", "grace", True),  # admin inherits sales_rep
        ("role: {in: [sales_manager]}", "alice", False),
        ("role: {not_in: [sales_manager]}", "alice", True),
        ("role: {not_in: [sales_manager]}", "dave", False),
        ("role: {in: [admin, support_agent]}", "frank", True),
        ("user: {in: [alice, bob]}", "bob", True),
        ("user: {in: [alice, bob]}", "carol", False),
        ("user: {not_in: [alice]}", "carol", True),
    ],
)
def test_identity_membership(text, user, expected):
    assert make_criterion(text).evaluate(make_ctx(user=user)) is expected


@pytest.mark.parametrize("text", ["role: {in: [admin]}", "user: {in: [alice]}", "mfa: true"])
def test_missing_identity_is_unknown(text):
    assert make_criterion(text).evaluate(make_ctx(user=None)) is None


@pytest.mark.parametrize(
    ("text", "operation", "expected"),
    [
        ("operation: {in: [customers.view]}", "customers.view", True),
        ("operation: {in: ['customers.*']}", "customers.export", True),
        ("operation: {in: ['*.export']}", "customers.export", True),
        ("operation: {in: ['*.export']}", "deals.list", False),
        ("operation: {not_in: ['*.delete']}", "deals.delete", False),
        ("operation: {in: ['*']}", "admin.admin", True),
        ("action: {in: [view, list]}", "contacts.list", True),
        ("action: {in: [view, list]}", "contacts.delete", False),
        ("action: {not_in: [delete]}", "contacts.delete", False),
    ],
)
def test_operation_and_action(text, operation, expected):
    assert make_criterion(text).evaluate(make_ctx(operation)) is expected


def test_missing_endpoint_is_unknown():
    assert make_criterion("action: {in: [view]}").evaluate(make_ctx(None)) is None
    assert make_criterion("operation: {in: [customers.view]}").evaluate(make_ctx(None)) is None


@pytest.mark.parametrize(
    ("text", "method", "expected"),
    [
        ("method: {in: [GET]}", "GET", True),
        ("method: {in: [GET]}", "POST", False),
        ("method: {not_in: [DELETE, PUT]}", "PATCH", True),
    ],
)
def test_method(text, method, expected):
    assert make_criterion(text).evaluate(make_ctx(method=method)) is expected


@pytest.mark.parametrize(
    ("text", "mfa", "expected"),
    [("mfa: true", True, True), ("mfa: true", False, False), ("mfa: false", False, True), ("mfa: false", True, False)],
)
def test_mfa(text, mfa, expected):
    assert make_criterion(text).evaluate(make_ctx(mfa=mfa)) is expected


def test_list_reference_expands():
    criterion = make_criterion("role: {in: $staff}", lists={"staff": ["support_agent", "admin"]})
    assert criterion.evaluate(make_ctx(user="frank")) is True
    assert criterion.evaluate(make_ctx(user="alice")) is False


def test_no_roles_is_never_in():
    identity = make_identity("alice", roles=())
    assert make_criterion("role: {in: [sales_rep]}").evaluate(make_ctx(user=identity)) is False


def test_role_checks_effective_roles_not_declared_ones():
    user = dataclasses.replace(make_identity("alice").user, effective_roles=frozenset({"admin"}))
    identity = make_identity(user)
    assert make_criterion("role: {in: [admin]}").evaluate(make_ctx(user=identity)) is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("role: {in: [wizard]}", "unknown role 'wizard'"),
        ("user: {in: [mallory]}", "unknown user 'mallory'"),
        ("operation: {in: [customers.read]}", "unknown operation 'customers.read'"),
        ("operation: {in: ['orders.*']}", "matches no operation"),
        ("action: {in: [read]}", "unknown action 'read'"),
        ("method: {in: [get]}", "unknown HTTP method"),
        ("mfa: yes please", "mfa takes true or false"),
        ("role: {in: [admin], not_in: [sales_rep]}", "exactly one of 'in' or 'not_in'"),
        ("role: {within: [admin]}", "unknown key 'within'"),
        ("role: {in: []}", "needs at least one value"),
        ("role: {in: $nope}", "unknown list '$nope'"),
    ],
)
def test_compile_errors(text, message):
    criterion, errors = try_criterion(text)
    assert criterion is None
    assert any(message in str(e) for e in errors), [str(e) for e in errors]
