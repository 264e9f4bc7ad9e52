"""The SQLite store: ids, JSON columns, paging, filters, updates and deletes."""

from __future__ import annotations

import pytest

from democrm.store import Store


@pytest.fixture
def store():
    store = Store()
    yield store
    store.close()


def contact(owner: str = "alice") -> dict:
    return {"first_name": "Ann", "owner": {"id": owner, "email": f"{owner}@example.com"}, "region": "emea"}


def test_ids_count_from_one_and_are_never_reused(store):
    first, second = store.insert_many("contacts", [contact(), contact()])
    assert (first["id"], second["id"]) == (1, 2)
    store.delete("contacts", 2)
    assert store.insert("contacts", contact())["id"] == 3


def test_json_columns_round_trip(store):
    deal = store.insert("deals", {"assigned_to": [{"id": "bob", "email": "bob@example.com"}], "amount": 1.5})
    assert store.get("deals", deal["id"])["assigned_to"] == [{"id": "bob", "email": "bob@example.com"}]


def test_records_have_every_column_in_order(store):
    record = store.insert("contacts", contact())
    assert list(record) == [
        "id",
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "owner",
        "team",
        "department",
        "region",
        "branch",
    ]


def test_page_is_in_id_order_with_the_total(store):
    store.insert_many("contacts", [contact() for _ in range(7)])
    items, total = store.page("contacts", offset=3, limit=2)
    assert ([r["id"] for r in items], total) == ([4, 5], 7)


def test_filters_compare_columns_for_equality(store):
    store.insert_many("contacts", [contact(), {**contact(), "region": "apac"}])
    assert [r["id"] for r in store.all("contacts", {"region": "apac"})] == [2]
    assert store.count("contacts", {"region": "emea"}) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.insert("contacts", {"nope": 1}),
        lambda s: s.all("contacts", {"nope": 1}),
        lambda s: s.update("contacts", 1, {"first_name; DROP TABLE contacts": "x"}),
        lambda s: s.get("users", 1),
    ],
)
def test_unknown_columns_and_tables_are_refused(store, call):
    with pytest.raises(KeyError):
        call(store)


def test_update_changes_only_the_given_columns(store):
    store.insert("contacts", contact())
    updated = store.update("contacts", 1, {"first_name": "Bea"})
    assert (updated["first_name"], updated["region"]) == ("Bea", "emea")


def test_update_of_a_missing_record_returns_none(store):
    assert store.update("contacts", 42, {"first_name": "Bea"}) is None


def test_delete_many_counts_only_existing_records(store):
    store.insert_many("contacts", [contact() for _ in range(3)])
    assert store.delete_many("contacts", [1, 3, 3, 99]) == 2
    assert [r["id"] for r in store.all("contacts")] == [2]


def test_a_file_database_keeps_its_data(tmp_path):
    path = str(tmp_path / "crm.sqlite3")
    first = Store(path)
    first.insert("contacts", contact())
    first.close()
    again = Store(path)
    assert again.count("contacts") == 1
    again.close()
