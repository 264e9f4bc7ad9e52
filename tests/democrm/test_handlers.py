"""democrm's endpoints through a real client: shapes, pagination, CRUD, bulk, export, import."""

from __future__ import annotations

import csv
import io

import pytest

from democrm.store import TABLES

from .conftest import AS_ALICE

MISSING = 10**6


async def get_json(crm, path, status=200, **kwargs):
    response = await crm.get(path, headers=AS_ALICE, **kwargs)
    assert response.status == status, await response.text()
    return await response.json()


# -- lists and pagination -------------------------------------------------------------------------


async def test_customers_list_pages_in_id_order(crm):
    body = await get_json(crm, "/api/customers?page=2&page_size=10")
    assert [r["id"] for r in body["data"]] == list(range(11, 21))
    assert (body["page"], body["page_size"], body["total"]) == (2, 10, 30)


async def test_default_page_size_is_50(crm):
    assert (await get_json(crm, "/api/contacts"))["next"] is None
    assert len((await get_json(crm, "/api/contacts"))["results"]["items"]) == 40


async def test_page_size_1000_is_allowed(make_crm):
    crm = await make_crm(customers=1001)
    assert len((await get_json(crm, "/api/customers?page_size=1000"))["data"]) == 1000


async def test_a_page_past_the_end_is_empty(crm):
    assert (await get_json(crm, "/api/customers?page=9"))["data"] == []


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=abc",
        "page=1.5",
        "page=",
        "page_size=0",
        "page_size=1001",
        "page_size=%EF%BC%91",
        "page=1&page=2",
        "page_size=10&page_size=20",
    ],
)
async def test_bad_pagination_is_a_400(crm, query):
    body = await get_json(crm, f"/api/customers?{query}", status=400)
    assert set(body) == {"error"}


async def test_contacts_list_has_a_next_link_until_the_last_page(crm):
    body = await get_json(crm, "/api/contacts?page=1&page_size=25")
    assert (len(body["results"]["items"]), body["results"]["count"]) == (25, 40)
    assert body["next"] == "/api/contacts?page=2&page_size=25"
    assert (await get_json(crm, body["next"]))["next"] is None


async def test_deals_list_splits_open_and_closed(crm):
    body = await get_json(crm, "/api/deals?page_size=20")
    assert set(body) == {"open", "closed", "page"}
    assert all(d["stage"].startswith("closed") for d in body["closed"])
    assert not any(d["stage"].startswith("closed") for d in body["open"])
    assert sorted(d["id"] for d in body["open"] + body["closed"]) == list(range(1, 21))


# -- single records -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "unwrap"),
    [
        ("/api/customers/3", lambda b: b),
        ("/api/contacts/3", lambda b: b["contact"]),
        ("/api/deals/3", lambda b: b),
    ],
)
async def test_view_answers_the_record_in_its_shape(crm, path, unwrap):
    record = unwrap(await get_json(crm, path))
    assert record["id"] == 3 and list(record) == list(TABLES[path.split("/")[2]])


@pytest.mark.parametrize("path", ["/api/customers/", "/api/contacts/", "/api/deals/"])
@pytest.mark.parametrize("wanted", [str(MISSING), "0", "99999999999999999999999"])
async def test_view_of_a_missing_record_is_a_404(crm, path, wanted):
    assert await get_json(crm, path + wanted, status=404) == {"error": "not found"}


async def test_create_customer_owned_by_the_acting_user(crm):
    response = await crm.post("/api/customers", json={"name": "Acme", "quote_price": 10}, headers=AS_ALICE)
    assert response.status == 201
    record = await response.json()
    assert (record["id"], record["owner_id"], record["region"], record["quote_price"]) == (31, "alice", "emea", 10.0)
    assert await get_json(crm, "/api/customers/31") == record


async def test_create_with_a_personal_access_token_is_owned_by_its_user(crm):
    response = await crm.post(
        "/api/contacts", json={"first_name": "Zoe"}, headers={"Authorization": "Bearer crmpat-erin"}
    )
    contact = (await response.json())["contact"]
    assert (response.status, contact["owner"]["id"], contact["branch"]) == (201, "erin", "shanghai")


async def test_create_with_a_login_token_is_owned_by_its_user(crm):
    token = (await (await crm.post("/api/login", json={"user": "bob"})).json())["token"]
    response = await crm.post(
        "/api/deals", json={"title": "T", "amount": 5}, headers={"Authorization": f"Bearer {token}"}
    )
    assert (await response.json())["assigned_to"] == [{"id": "bob", "email": "bob@example.com"}]


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"name": 5}', b'{"status": "vip"}'])
async def test_create_with_a_bad_body_is_a_400(crm, body):
    response = await crm.post("/api/customers", data=body, headers=AS_ALICE)
    assert response.status == 400 and set(await response.json()) == {"error"}
    assert (await get_json(crm, "/api/customers"))["total"] == 30


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_update_is_partial(crm, method):
    before = await get_json(crm, "/api/customers/4")
    response = await crm.request(method, "/api/customers/4", json={"notes": "n", "id": 99, "x": 1}, headers=AS_ALICE)
    after = await response.json()
    assert response.status == 200 and after["notes"] == "n"
    assert {k: v for k, v in after.items() if k not in ("notes", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("notes", "updated_at")
    }


async def test_update_of_a_contact_answers_in_the_contact_shape(crm):
    response = await crm.patch("/api/contacts/2", json={"last_name": "Li"}, headers=AS_ALICE)
    assert (await response.json())["contact"]["last_name"] == "Li"


async def test_update_of_a_missing_record_is_a_404(crm):
    response = await crm.put(f"/api/deals/{MISSING}", json={"title": "x"}, headers=AS_ALICE)
    assert response.status == 404


@pytest.mark.parametrize("table", ["customers", "contacts", "deals"])
async def test_delete_then_the_record_is_gone(crm, table):
    response = await crm.delete(f"/api/{table}/5", headers=AS_ALICE)
    assert (response.status, await response.read()) == (204, b"")
    await get_json(crm, f"/api/{table}/5", status=404)
    assert (await crm.delete(f"/api/{table}/5", headers=AS_ALICE)).status == 404


# -- bulk delete, export, import ------------------------------------------------------------------


async def test_bulk_delete_counts_what_existed(crm):
    response = await crm.post("/api/customers/bulk-delete", json={"ids": [1, 2, 2, MISSING, 2**63]}, headers=AS_ALICE)
    assert await response.json() == {"deleted": 2}
    assert (await get_json(crm, "/api/customers"))["total"] == 28


@pytest.mark.parametrize("body", [{}, {"ids": "1,2"}, {"ids": [1, "2"]}, {"ids": [True]}])
async def test_bulk_delete_with_bad_ids_is_a_400(crm, body):
    response = await crm.post("/api/customers/bulk-delete", json=body, headers=AS_ALICE)
    assert response.status == 400


async def test_json_export_has_every_customer(crm):
    body = await get_json(crm, "/api/customers/export.json")
    assert [r["id"] for r in body["customers"]] == list(range(1, 31))


@pytest.mark.parametrize("query", ["region=apac", "team=west", "region=emea&team=east"])
async def test_exports_filter_by_region_and_team(crm, query):
    wanted = dict(pair.split("=") for pair in query.split("&"))
    exported = (await get_json(crm, f"/api/customers/export.json?{query}"))["customers"]
    everyone = (await get_json(crm, "/api/customers/export.json"))["customers"]
    assert exported == [r for r in everyone if all(r[k] == v for k, v in wanted.items())] and exported
    rows = list(
        csv.DictReader(
            io.StringIO(await (await crm.get(f"/api/customers/export.csv?{query}", headers=AS_ALICE)).text())
        )
    )
    assert [int(r["id"]) for r in rows] == [r["id"] for r in exported]


async def test_csv_export_has_a_header_and_the_same_values_as_json(crm):
    response = await crm.get("/api/customers/export.csv", headers=AS_ALICE)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(await response.text(), newline="")))
    assert rows[0] == list(TABLES["customers"])
    records = (await get_json(crm, "/api/customers/export.json"))["customers"]
    assert rows[1:] == [[str(r[c]) for c in rows[0]] for r in records]


async def test_an_exported_csv_imports_back(crm):
    exported = await (await crm.get("/api/customers/export.csv?region=apac", headers=AS_ALICE)).read()
    response = await crm.post("/api/customers/import", data=exported, headers={**AS_ALICE, "Content-Type": "text/csv"})
    count = len(list(csv.DictReader(io.StringIO(exported.decode(), newline=""))))
    assert await response.json() == {"imported": count} and count > 0
    body = await get_json(crm, "/api/customers/export.json?region=apac")
    originals, copies = body["customers"][:count], body["customers"][count:]
    assert [{**r, "id": 0} for r in originals] == [{**r, "id": 0} for r in copies]


async def test_import_without_owner_column_is_owned_by_the_acting_user(crm):
    response = await crm.post(
        "/api/customers/import", data="name,email\nA,a@x.example\nB,b@x.example\n", headers=AS_ALICE
    )
    assert await response.json() == {"imported": 2}
    assert [r["owner_id"] for r in (await get_json(crm, "/api/customers?page=2&page_size=30"))["data"]] == ["alice"] * 2


@pytest.mark.parametrize("body", [b"name,secret\nA,b\n", b"name\n\xff\n", b"name,quote_price\nA,1\nB,x\n"])
async def test_a_bad_import_imports_nothing(crm, body):
    response = await crm.post("/api/customers/import", data=body, headers=AS_ALICE)
    assert response.status == 400 and "error" in await response.json()
    assert (await get_json(crm, "/api/customers"))["total"] == 30


# -- login, admin, health -------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{"user": "mallory"}, {"user": 1}, {}])
async def test_login_of_an_unknown_user_is_refused(crm, body):
    response = await crm.post("/api/login", json=body)
    assert (response.status, await response.json()) == (401, {"error": "unknown user"})


async def test_admin_users_lists_the_directory(crm):
    users = (await get_json(crm, "/api/admin/users"))["users"]
    assert len(users) == 10 and users[0] == {
        "id": "alice",
        "email": "alice@example.com",
        "role": "sales_rep",
        "team": "east",
        "department": "sales",
        "region": "emea",
        "branch": "paris",
        "status": "active",
    }


async def test_admin_settings_are_stored(crm):
    from democrm.app import SETTINGS

    response = await crm.post("/api/admin/settings", json={"mfa": False}, headers=AS_ALICE)
    assert await response.json() == {"ok": True}
    assert crm.app[SETTINGS] == {"mfa": False}


async def test_health_needs_no_login(crm):
    response = await crm.get("/health")
    assert (response.status, await response.json()) == (200, {"status": "ok"})
