"""Data scope truth tables: which records a caller may see at each level."""

from __future__ import annotations

import pytest

from gateway.errors import ObligationUnenforceable
from gateway.model import Resource, ScopeField
from gateway.response import record_in_scope
from gateway.response.scope import scope_test

from .factories import CONTACTS, CUSTOMERS, DEALS, UNSCOPED, customer, identity

ALICE = identity("alice")


@pytest.mark.parametrize(
    "scope, record, expected",
    [
        ("own", customer(1, "alice"), True),
        ("own", customer(1, "bob"), False),
        ("team", customer(1, "bob"), True),  # bob is in alice's team (east)
        ("team", customer(1, "carol"), False),
        ("department", customer(1, "carol"), True),
        ("department", customer(1, "carol", department="support"), False),
        ("region", customer(1, "carol"), True),  # both emea
        ("region", customer(1, "bob"), False),
        ("branch", customer(1, "carol"), True),
        ("branch", customer(1, "bob"), False),
        ("all", customer(1, "bob"), True),
        ("all", {}, True),
    ],
)
def test_customer_scope_levels(scope, record, expected):
    assert record_in_scope(record, CUSTOMERS, scope, ALICE) is expected


@pytest.mark.parametrize(
    "owner_id, user_id, expected",
    [
        (7, "7", True),  # the CRM may send ids as JSON numbers
        ("7", "7", True),
        (8, "7", False),
        (7.0, "7", False),  # floats are not ids
        (True, "True", False),  # neither are booleans
        (None, "None", False),
        (["7"], "7", False),  # a list at a plain path is not a value
        ({"id": "7"}, "7", False),
    ],
)
def test_values_compare_as_strings_only_for_strings_and_integers(owner_id, user_id, expected):
    assert record_in_scope({"owner_id": owner_id}, CUSTOMERS, "own", identity(user_id)) is expected


@pytest.mark.parametrize(
    "owner, expected",
    [
        ({"id": "alice", "email": "alice@example.com"}, True),
        ({"id": "bob", "email": "alice@example.com"}, False),
        ({"email": "alice@example.com"}, False),
        ("alice", False),  # not an object: the path reaches nothing
        (None, False),
    ],
)
def test_nested_owner_id(owner, expected):
    assert record_in_scope({"id": 1, "owner": owner}, CONTACTS, "own", ALICE) is expected


@pytest.mark.parametrize(
    "assigned_to, expected",
    [
        ([{"id": "alice", "email": "alice@example.com"}], True),
        ([{"id": "bob", "email": "bob@example.com"}, {"id": "alice", "email": "alice@example.com"}], True),
        ([{"id": "bob", "email": "bob@example.com"}], False),
        ([], False),
        ({"email": "alice@example.com"}, False),  # not a list
        ([{"id": "alice"}], False),
    ],
)
def test_any_assignee_email_puts_a_deal_in_scope(assigned_to, expected):
    assert record_in_scope({"id": 1, "assigned_to": assigned_to}, DEALS, "own", ALICE) is expected


def test_missing_record_field_is_out_of_scope():
    record = customer(1, "alice")
    del record["team"]
    assert record_in_scope(record, CUSTOMERS, "team", ALICE) is False


@pytest.mark.parametrize("attribute_value", [None, ""])
def test_missing_identity_attribute_is_out_of_scope(attribute_value):
    who = identity("alice", region=attribute_value)
    assert record_in_scope(customer(1, "alice", region=attribute_value), CUSTOMERS, "region", who) is False


def test_custom_identity_attribute():
    resource = Resource("accounts", scope_fields={"own": ScopeField("cost_center", "cost_center")})
    who = identity("alice", attributes={"cost_center": "cc-12"})
    assert record_in_scope({"cost_center": "cc-12"}, resource, "own", who) is True
    assert record_in_scope({"cost_center": "cc-13"}, resource, "own", who) is False


@pytest.mark.parametrize("scope", ["own", "team", "nonsense"])
def test_level_without_a_scope_field_is_unenforceable(scope):
    with pytest.raises(ObligationUnenforceable):
        record_in_scope({"id": 1}, UNSCOPED, scope, ALICE)


def test_bad_scope_field_path_is_unenforceable():
    resource = Resource("x", scope_fields={"own": ScopeField("owner..id", "user")})
    with pytest.raises(ObligationUnenforceable):
        record_in_scope({"id": 1}, resource, "own", ALICE)


# --- any-of fields and membership (issue 10) -------------------------------------------------------


def _directory():
    from gateway.identity.directory import Directory
    from gateway.model import User

    people = [
        User(id=u, team=t, attributes={"crm_profile_id": f"P-{u}"})
        for u, t in (("alice", "east"), ("bob", "east"), ("carol", "west"))
    ]
    return Directory(users={u.id: u for u in people}, roles={}, api_keys={}, crm_tokens={})


LEADS_ANY = Resource(
    "leads",
    scope_fields={
        "own": (ScopeField("created_by", "crm_profile_id"), ScopeField("assigned_to[].id", "crm_profile_id")),
        "team": (
            ScopeField("teams[].name", "team"),
            ScopeField("assigned_to[].id", "crm_profile_id", member_of="team"),
        ),
    },
)


def _lead(created_by, *assignees, teams=()):
    return {
        "created_by": created_by,
        "assigned_to": [{"id": a} for a in assignees],
        "teams": [{"name": t} for t in teams],
    }


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (_lead("P-alice", "P-bob"), True),  # she created it
        (_lead("P-bob", "P-carol", "P-alice"), True),  # it is assigned to her
        (_lead("P-bob", "P-bob"), False),
    ],
)
def test_own_is_any_of_several_fields(record, expected):
    who = identity("alice", attributes={"crm_profile_id": "P-alice"})
    assert scope_test(LEADS_ANY, "own", who)(record) is expected


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (_lead("x", "P-bob"), True),  # owned by a team member, no tag
        (_lead("x", "P-carol", teams=("east",)), True),  # tagged
        (_lead("x", "P-carol"), False),
    ],
)
def test_team_scope_by_membership_through_the_directory(record, expected):
    assert scope_test(LEADS_ANY, "team", identity("alice"), _directory())(record) is expected


def test_membership_without_a_directory_matches_nothing_but_the_tag():
    test = scope_test(LEADS_ANY, "team", identity("alice"))
    assert test(_lead("x", "P-bob")) is False and test(_lead("x", "P-carol", teams=("east",))) is True
