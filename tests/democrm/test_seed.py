"""The seed: deterministic, realistic, and every record's org fields are its owner's."""

from __future__ import annotations

import re

import pytest

from democrm.seed import CUSTOMER_STATUSES, DEAL_STAGES, DIRECTORY, ORG_FIELDS, OWNERS, generate, org_of

PHONE = {"paris": re.compile(r"^\+33 1( \d\d){4}$"), "shanghai": re.compile(r"^\+86 21 \d{4} \d{4}$")}


@pytest.fixture(scope="module")
def data():
    return generate(20261124, customers=300, contacts=400, deals=200)


def test_same_seed_gives_identical_data(data):
    assert generate(20261124, customers=300, contacts=400, deals=200) == data


def test_another_seed_gives_other_data(data):
    assert generate(1, customers=300, contacts=400, deals=200) != data


def test_counts_are_as_asked(data):
    assert [len(data[t]) for t in ("customers", "contacts", "deals")] == [300, 400, 200]


def test_owners_are_the_six_sales_people_and_all_own_something(data):
    assert {c["owner_id"] for c in data["customers"]} == set(OWNERS)


@pytest.mark.parametrize("table", ["customers", "contacts", "deals"])
def test_org_fields_are_the_owners(data, table):
    owner_of = {
        "customers": lambda r: r["owner_id"],
        "contacts": lambda r: r["owner"]["id"],
        "deals": lambda r: r["assigned_to"][0]["id"],
    }[table]
    for record in data[table]:
        assert {f: record[f] for f in ORG_FIELDS} == org_of(owner_of(record))


def test_people_references_have_the_directory_email(data):
    people = [c["owner"] for c in data["contacts"]] + [p for d in data["deals"] for p in d["assigned_to"]]
    assert all(p == {"id": p["id"], "email": f"{p['id']}@example.com"} for p in people)


def test_deals_have_one_or_two_distinct_people_led_by_the_customers_owner(data):
    customers = data["customers"]
    for deal in data["deals"]:
        ids = [p["id"] for p in deal["assigned_to"]]
        assert 1 <= len(ids) <= 2 and len(set(ids)) == len(ids)
        assert ids[0] == customers[deal["customer_id"] - 1]["owner_id"]
    assert {len(d["assigned_to"]) for d in data["deals"]} == {1, 2}


def test_contacts_belong_to_their_customers_owner(data):
    for contact in data["contacts"]:
        assert contact["owner"]["id"] == data["customers"][contact["customer_id"] - 1]["owner_id"]


def test_phones_follow_the_owners_country(data):
    for customer in data["customers"]:
        assert PHONE[customer["branch"]].match(customer["phone"]), customer["phone"]


def test_values_are_of_the_documented_kinds(data):
    for customer in data["customers"]:
        assert customer["status"] in CUSTOMER_STATUSES
        assert isinstance(customer["quote_price"], float)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", customer["created_at"])
        assert customer["updated_at"] >= customer["created_at"]
        assert "@" in customer["email"]
    assert all(d["stage"] in DEAL_STAGES for d in data["deals"])


def test_complaints_are_sometimes_empty_and_sometimes_not(data):
    assert {bool(c["complaints"]) for c in data["customers"]} == {True, False}


def test_directory_matches_the_contract():
    assert len(DIRECTORY) == 10 and DIRECTORY["ivan"]["status"] == "offboarded"
    assert org_of("bob") == {"team": "east", "department": "sales", "region": "apac", "branch": "shanghai"}
    assert org_of("nobody") == {"team": "", "department": "", "region": "", "branch": ""}


def test_no_customers_still_seeds_contacts_and_deals():
    data = generate(3, customers=0, contacts=2, deals=2)
    assert all(r["customer_id"] is None for r in data["contacts"] + data["deals"])
