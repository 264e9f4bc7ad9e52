"""Writes are decided from the request before the CRM sees them (issue 9, the classic demo CRM).

Every refusal here is checked against the CRM's own state afterwards: the store is read directly,
and the CRM's request log shows that no write reached it.
"""

from __future__ import annotations

import pytest

from democrm.app import REQUESTS_SEEN, STORE
from tests.integration.conftest import auth


def store(crm):
    return crm.app[STORE]


def writes_reaching(crm) -> list:
    return [seen for seen in crm.app[REQUESTS_SEEN] if seen.method not in ("GET", "HEAD")]


def owned(crm, table: str, owner: str) -> dict:
    def owner_of(record):
        value = record.get("owner_id") or record.get("owner") or record.get("assigned_to")
        if isinstance(value, list):
            return value[0]["id"]
        return value["id"] if isinstance(value, dict) else value

    return next(r for r in store(crm).all(table) if owner_of(r) == owner)


def snapshot(crm) -> dict:
    return {table: store(crm).all(table) for table in ("customers", "contacts", "deals")}


# The issue's own examples, then their spellings: each refused with the CRM unchanged.
REFUSED = [
    ("carol", "POST", "/api/deals", {"title": "gift", "amount": 1, "customer_id": 4, "assigned_to": ["bob"]}),
    ("carol", "POST", "/api/deals", {"title": "gift", "amount": 1, "assigned_to": [{"id": "carol"}, {"id": "bob"}]}),
    ("carol", "POST", "/api/deals", {"title": "gift", "assigned_to": [{"email": "bob@example.com"}]}),
    ("carol", "POST", "/api/contacts", {"first_name": "P", "last_name": "X", "customer_id": 4, "owner": "bob"}),
    ("carol", "POST", "/api/contacts", {"first_name": "P", "last_name": "X", "owner": {"id": "bob"}}),
    ("carol", "POST", "/api/contacts", {"first_name": "P", "last_name": "X", "owner": {"email": "bob@example.com"}}),
    ("dave", "POST", "/api/customers", {"name": "P", "owner_id": "carol"}),
    ("dave", "POST", "/api/customers", {"name": "P", "team": "west"}),  # dave's own, tagged for west
    ("dave", "POST", "/api/customers", {"name": "P", "branch": "new-york", "owner_id": "dave"}),  # no teammate there
    ("carol", "POST", "/api/customers", {"name": "P", "owner_id": "nobody"}),  # unresolvable
    ("carol", "POST", "/api/customers", {"name": "P", "owner_id": None}),
    ("carol", "POST", "/api/customers", {"name": "P", "owner_id": ["carol", "alice"]}),
    ("carol", "POST", "/api/customers", {"name": "P", "secret_owner": "alice"}),  # not writable
]


@pytest.mark.parametrize(("user", "method", "target", "body"), REFUSED)
async def test_scope_changing_writes_are_refused_before_the_crm_acts(gw, crm, user, method, target, body):
    before = snapshot(crm)
    resp = await gw.request(method, target, json=body, headers=auth(user))
    assert resp.status in (403, 400), await resp.text()
    assert (await resp.json())["reason"] in ("write-out-of-scope", "owner-unresolvable", "field-not-writable")
    assert writes_reaching(crm) == [] and snapshot(crm) == before


@pytest.mark.parametrize(
    ("user", "table", "target", "body"),
    [
        ("carol", "contacts", "/api/contacts/{id}", {"owner": "bob"}),
        ("carol", "contacts", "/api/contacts/{id}", {"owner": {"id": "alice", "email": "alice@example.com"}}),
        ("carol", "deals", "/api/deals/{id}", {"assigned_to": [{"id": "bob"}]}),
        ("dave", "customers", "/api/customers/{id}", {"owner_id": "carol"}),
        ("dave", "customers", "/api/customers/{id}", {"team": "west"}),
    ],
)
async def test_reassigning_an_own_record_away_is_refused_before_the_crm_acts(gw, crm, user, table, target, body):
    owner = "carol" if user == "carol" else "dave"
    record = owned(crm, table, owner)
    before = snapshot(crm)
    resp = await gw.patch(target.format(id=record["id"]), json=body, headers=auth(user))
    assert resp.status == 403, await resp.text()
    assert (await resp.json())["reason"] == "write-out-of-scope"
    assert writes_reaching(crm) == [] and snapshot(crm) == before


async def test_a_manager_may_hand_a_record_to_a_teammate_and_the_crm_derives_the_team(gw, crm):
    record = owned(crm, "customers", "dave")
    resp = await gw.patch(f"/api/customers/{record['id']}", json={"owner_id": "bob"}, headers=auth("dave"))
    assert resp.status == 200, await resp.text()
    after = store(crm).get("customers", record["id"])
    assert (after["owner_id"], after["team"]) == ("bob", "east")


async def test_a_create_without_an_owner_is_assigned_to_the_caller_by_the_crm(gw, crm):
    resp = await gw.post("/api/customers", json={"name": "New Co"}, headers=auth("carol"))
    assert resp.status == 201, await resp.text()
    created = store(crm).get("customers", (await resp.json())["id"])
    assert (created["owner_id"], created["team"]) == ("carol", "west")


async def test_a_body_on_a_delete_is_not_forwarded(gw, crm):
    record = owned(crm, "customers", "dave")
    resp = await gw.request(
        "DELETE",
        f"/api/customers/{record['id']}",
        data=b'{"cascade": true}',
        headers={**auth("dave"), "Content-Type": "application/json"},
    )
    assert resp.status == 400 and (await resp.json())["reason"] == "body-not-allowed"
    assert writes_reaching(crm) == [] and store(crm).get("customers", record["id"]) is not None


async def test_admins_with_scope_all_write_as_before(gw, crm):
    resp = await gw.post("/api/customers", json={"name": "P", "owner_id": "carol"}, headers=auth("grace"))
    assert resp.status == 201, await resp.text()
    assert store(crm).get("customers", (await resp.json())["id"])["owner_id"] == "carol"
