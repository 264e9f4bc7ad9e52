"""The realistic seed: deterministic, UUID ids, and the shapes and variety a real CRM has."""

from __future__ import annotations

import re
import uuid

import pytest

from democrm.realistic.people import PROFILES, derived_teams, user_of_profile
from democrm.realistic.seed import LEAD_STATUSES, generate
from democrm.seed import OWNERS

LEAD_KEYS = [
    "id",
    "title",
    "amount",
    "status",
    "created_by",
    "assigned_to",
    "teams",
    "account",
    "Phone",
    "mobilePhone",
    "email",
    "quote_price",
    "contacts",
    "created_at",
]
ACCOUNT_KEYS = ["id", "name", "created_by", "assigned_to", "teams", "phone", "industry", "annual_revenue"]


@pytest.fixture(scope="module")
def data():
    return generate(20261124)


def users(people: list[dict]) -> list[str]:
    return [user_of_profile(person["id"]) for person in people]


def test_same_seed_same_records_other_seed_other_records(data):
    assert generate(20261124) == data
    assert generate(1) != data


def test_default_sizes_and_sizes_as_asked(data):
    assert (len(data["leads"]), len(data["accounts"])) == (60, 30)
    assert [len(rows) for rows in generate(5, accounts=2, leads=3).values()] == [2, 3]


def test_ids_are_distinct_uuids(data):
    ids = [r["id"] for r in data["leads"] + data["accounts"]] + [c["id"] for r in data["leads"] for c in r["contacts"]]
    assert len(set(ids)) == len(ids)
    assert all(str(uuid.UUID(value)) == value for value in ids)


def test_lead_shape(data):
    account_ids = {a["id"] for a in data["accounts"]}
    for lead in data["leads"]:
        assert list(lead) == LEAD_KEYS
        assert lead["created_by"] in PROFILES.values()  # a bare profile UUID string
        assert lead["assigned_to"] and set(users(lead["assigned_to"])) <= set(OWNERS)
        assert all(set(p) == {"id", "email", "name"} for p in lead["assigned_to"])
        assert lead["teams"] == derived_teams(users(lead["assigned_to"]))
        assert lead["account"] is None or lead["account"] in account_ids
        assert lead["status"] in LEAD_STATUSES and isinstance(lead["amount"], float)
        assert re.fullmatch(r"\+\d\d[\d ]+", lead["Phone"]) and " " in lead["Phone"]
        assert re.fullmatch(r"\+\d+", lead["mobilePhone"])  # the same kind of number, spelt without spaces
        assert "escalate" not in lead["title"].lower()  # seeded leads are never due for escalation


def test_nested_contacts_have_their_own_assignees(data):
    contacts = [c for lead in data["leads"] for c in lead["contacts"]]
    assert contacts and all(
        list(c) == ["id", "first_name", "last_name", "email", "phone", "assigned_to"] for c in contacts
    )
    assert any(
        lead["contacts"] and users(lead["contacts"][0]["assigned_to"]) != users(lead["assigned_to"][:1])
        for lead in data["leads"]
    )  # some contact is someone else's


def test_account_shape(data):
    for account in data["accounts"]:
        assert list(account) == ACCOUNT_KEYS
        assert set(account["created_by"]) == {"id", "email"}  # an object here, a bare id on leads
        assert account["teams"] == derived_teams(users(account["assigned_to"]))


def test_the_variety_real_crms_have(data):
    leads = data["leads"]
    assert {len(lead["assigned_to"]) for lead in leads} == {1, 2}
    assert sum(lead["created_by"] != lead["assigned_to"][0]["id"] for lead in leads) > len(leads) / 3
    assert any(lead["account"] is None for lead in leads)
    accounts = {a["id"]: a for a in data["accounts"]}
    assert any(
        lead["account"] and accounts[lead["account"]]["assigned_to"][0] != lead["assigned_to"][0] for lead in leads
    )
    assert {user_of_profile(lead["created_by"]) for lead in leads} >= {"dave", "erin", "grace"}
