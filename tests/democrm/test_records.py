"""Bodies and CSV rows to records: types, owners and their org fields, defaults, CSV import."""

from __future__ import annotations

import pytest

from democrm.records import InvalidRecord, customers_from_csv, for_create, for_update

ALICE_ORG = {"team": "east", "department": "sales", "region": "emea", "branch": "paris"}
ERIN_ORG = {"team": "west", "department": "sales", "region": "apac", "branch": "shanghai"}


def org(record: dict) -> dict:
    return {k: record[k] for k in ALICE_ORG}


@pytest.mark.parametrize(
    ("table", "body", "problem"),
    [
        ("customers", {"name": 3}, "name must be a string"),
        ("customers", {"quote_price": "12"}, "quote_price must be a finite number"),
        ("customers", {"quote_price": True}, "quote_price must be a finite number"),
        ("customers", {"status": "vip"}, "status must be one of"),
        ("customers", {"owner_id": ""}, "owner_id must not be empty"),
        ("contacts", {"customer_id": "1"}, "customer_id must be a positive integer"),
        ("contacts", {"customer_id": 2**63}, "customer_id must be a positive integer"),
        ("contacts", {"owner": {"email": "x@example.com"}}, "owner must be a user id"),
        ("contacts", {"owner": {"id": "bob", "email": 7}}, "owner.email must be a string"),
        ("deals", {"assigned_to": []}, "assigned_to must be a non-empty list"),
        ("deals", {"assigned_to": "bob"}, "assigned_to must be a non-empty list"),
        ("deals", {"assigned_to": [5]}, "assigned_to[] must be a user id"),
        ("deals", {"stage": "won"}, "stage must be one of"),
    ],
)
def test_bad_values_are_refused(table, body, problem):
    with pytest.raises(InvalidRecord, match=problem.replace("[", r"\[").replace("]", r"\]")):
        for_create(table, body, "alice")


def test_create_defaults_the_owner_to_the_acting_user_with_their_org():
    record = for_create("customers", {"name": "Acme"}, "alice")
    assert (record["owner_id"], org(record)) == ("alice", ALICE_ORG)


def test_create_fills_defaults_and_timestamps():
    record = for_create("customers", {}, "alice")
    assert (record["status"], record["quote_price"], record["notes"]) == ("lead", 0.0, "")
    assert record["created_at"] == record["updated_at"]


def test_an_explicit_known_owner_brings_their_org():
    assert org(for_create("customers", {"owner_id": "erin"}, "alice")) == ERIN_ORG


def test_an_unknown_owner_has_an_empty_org():
    assert org(for_create("customers", {"owner_id": "mallory"}, "alice")) == dict.fromkeys(ALICE_ORG, "")


def test_explicit_org_values_are_kept_like_a_lenient_legacy_crm():
    assert for_create("customers", {"region": "apac"}, "alice")["region"] == "apac"


def test_without_owner_or_acting_user_create_is_refused():
    with pytest.raises(InvalidRecord, match="owner_id is required"):
        for_create("customers", {"name": "Acme"}, None)


@pytest.mark.parametrize(
    ("table", "field", "expected"),
    [
        ("contacts", "owner", {"id": "alice", "email": "alice@example.com"}),
        ("deals", "assigned_to", [{"id": "alice", "email": "alice@example.com"}]),
    ],
)
def test_people_references_default_to_the_acting_user(table, field, expected):
    assert for_create(table, {}, "alice")[field] == expected


def test_people_may_be_named_by_id_alone():
    deal = for_create("deals", {"assigned_to": ["erin", {"id": "bob"}]}, "alice")
    assert deal["assigned_to"] == [
        {"id": "erin", "email": "erin@example.com"},
        {"id": "bob", "email": "bob@example.com"},
    ]
    assert org(deal) == ERIN_ORG


def test_update_ignores_unknown_and_read_only_fields():
    assert for_update("contacts", {"id": 9, "nope": 1, "first_name": "Bea"}) == {"first_name": "Bea"}


def test_update_to_a_known_owner_moves_the_org_along():
    assert org(for_update("contacts", {"owner": "erin"})) == ERIN_ORG


def test_update_to_an_unknown_owner_keeps_the_org():
    assert for_update("contacts", {"owner": "mallory"}) == {"owner": {"id": "mallory", "email": "mallory@example.com"}}


def test_customer_update_stamps_updated_at():
    assert "updated_at" in for_update("customers", {"name": "X"})
    assert for_update("customers", {"nope": 1}) == {}


def test_csv_rows_become_customers_owned_by_the_acting_user_by_default():
    rows = customers_from_csv('name,quote_price,owner_id\r\nAcme,12.5,\r\n"Bee, Ltd",,erin\r\n', "alice")
    assert [(r["name"], r["quote_price"], r["owner_id"], r["region"]) for r in rows] == [
        ("Acme", 12.5, "alice", "emea"),
        ("Bee, Ltd", 0.0, "erin", "apac"),
    ]


def test_csv_keeps_given_timestamps_and_drops_ids():
    [row] = customers_from_csv("id,name,created_at\n7,Acme,2024-01-02T00:00:00Z\n", "alice")
    assert "id" not in row and row["created_at"] == "2024-01-02T00:00:00Z"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "needs a header row"),
        ("name,password\nx,y\n", "unknown CSV columns: password"),
        ("name,name\nx,y\n", "repeats a column"),
        ("name\nx,y\n", "line 2: more values than columns"),
        ("name,quote_price\nx,1\ny,lots\n", "line 3: could not convert"),
        ("name,quote_price\nx,nan\n", "line 2: quote_price must be a finite number"),
        ("name,status\nx,vip\n", "line 2: status must be one of"),
    ],
)
def test_bad_csv_is_refused_with_the_line(text, problem):
    with pytest.raises(InvalidRecord, match=problem):
        customers_from_csv(text, "alice")
