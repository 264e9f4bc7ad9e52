"""Acceptance 1-3 and 8: data scope and field masks through the real gateway and demo CRM."""

from __future__ import annotations

import csv
import io

import aiohttp
import pytest

from tests.integration.conftest import CRM_TOKEN, auth


async def crm_customers(crm, page_size=200) -> list[dict]:
    """What the CRM itself returns (service token, no gateway): the ground truth."""
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            crm.make_url(f"/api/customers?page_size={page_size}"),
            headers={"Authorization": f"Bearer {CRM_TOKEN}"},
        ) as r,
    ):
        return (await r.json())["data"]


@pytest.mark.parametrize(
    ("user", "field", "value"),
    [("alice", "owner_id", "alice"), ("dave", "team", "east"), ("grace", None, None)],
)
async def test_list_is_scoped_to_own_team_or_all(gw, crm, user, field, value):
    truth = await crm_customers(crm)
    resp = await gw.get("/api/customers?page_size=200", headers=auth(user))
    assert resp.status == 200, await resp.text()
    got = (await resp.json())["data"]
    want = [r for r in truth if field is None or r[field] == value]
    assert [r["id"] for r in got] == [r["id"] for r in want]
    assert 0 < len(got) <= len(truth)
    if field is not None:
        assert len(got) < len(truth)


async def test_support_agent_sees_masked_customer(gw, crm):
    truth = {r["id"]: r for r in await crm_customers(crm)}
    resp = await gw.get("/api/customers/1", headers=auth("frank"))
    assert resp.status == 200, await resp.text()
    record = await resp.json()
    assert "quote_price" not in record and "complaints" not in record
    phone = truth[1]["phone"]
    assert record["phone"] != phone
    assert record["phone"].endswith(phone[-4:])
    assert set(record["phone"][:-4]) == {"*"}
    assert record["name"] == truth[1]["name"]


async def test_rep_reading_another_reps_customer_gets_the_same_404_as_a_missing_one(gw, crm):
    truth = await crm_customers(crm)
    other = next(r for r in truth if r["owner_id"] == "alice")
    hidden = await gw.get(f"/api/customers/{other['id']}", headers=auth("carol"))
    missing = await gw.get("/api/customers/999999", headers=auth("carol"))
    assert hidden.status == missing.status == 404
    body, gone = await hidden.json(), await missing.json()
    assert body.keys() == gone.keys() == {"error", "reason", "request_id"}
    assert (body["error"], body["reason"]) == (gone["error"], gone["reason"]) == ("not-found", "record-not-found")
    assert hidden.headers.keys() - {"Date"} == missing.headers.keys() - {"Date"}


async def test_operator_may_answer_out_of_scope_with_403_and_the_rule(make_gateway, crm):
    gw = await make_gateway(crm, out_of_scope_answer="forbidden")
    truth = await crm_customers(crm)
    other = next(r for r in truth if r["owner_id"] == "alice")
    resp = await gw.get(f"/api/customers/{other['id']}", headers=auth("carol"))
    assert resp.status == 403
    body = await resp.json()
    assert body["reason"] == "record-out-of-scope"
    assert body["request_id"] and body["error"] == "forbidden"
    assert "rule" in body


async def test_rep_cannot_update_another_reps_customer(gw, crm):
    truth = await crm_customers(crm)
    other = next(r for r in truth if r["owner_id"] == "alice")
    resp = await gw.put(f"/api/customers/{other['id']}", json={"notes": "x"}, headers=auth("carol"))
    assert resp.status == 404
    assert (await resp.json())["reason"] == "record-not-found"
    mine = next(r for r in truth if r["owner_id"] == "carol")
    resp = await gw.put(f"/api/customers/{mine['id']}", json={"notes": "called"}, headers=auth("carol"))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["notes"] == "called"


async def test_rep_cannot_give_a_customer_away(gw, crm):
    truth = await crm_customers(crm)
    mine = next(r for r in truth if r["owner_id"] == "carol")
    resp = await gw.put(f"/api/customers/{mine['id']}", json={"owner_id": "alice"}, headers=auth("carol"))
    assert resp.status == 403


async def test_manager_bulk_delete_checks_every_record(gw, crm):
    truth = await crm_customers(crm)
    east = [r["id"] for r in truth if r["team"] == "east"][:2]
    west = [r["id"] for r in truth if r["team"] == "west"][:1]
    resp = await gw.post("/api/customers/bulk-delete", json={"ids": east + west}, headers=auth("dave"))
    assert resp.status == 404  # one id outside the team: answered like a missing one
    resp = await gw.post("/api/customers/bulk-delete", json={"ids": east}, headers=auth("dave"))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["deleted"] == 2


async def test_csv_export_is_scoped_and_masked_like_json(make_gateway, crm, clock):
    from datetime import datetime

    from tests.conftest import PARIS

    gw = await make_gateway(crm)
    clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=PARIS))  # inside alice's export grant (own scope)
    resp = await gw.get("/api/customers/export.csv", headers=auth("alice"))
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert rows and {r["owner_id"] for r in rows} == {"alice"}
    resp = await gw.get("/api/customers/export.json", headers=auth("alice"))
    records = (await resp.json())["customers"]
    assert [str(r["id"]) for r in records] == [r["id"] for r in rows]


async def test_gzip_list_is_scoped_and_masked_like_plain(make_gateway, crm, crm_gzip):
    plain = await make_gateway(crm)
    zipped = await make_gateway(crm_gzip)
    headers = {**auth("frank"), "Accept-Encoding": "gzip"}
    a = await plain.get("/api/customers?page_size=50", headers=headers)
    b = await zipped.get("/api/customers?page_size=50", headers=headers)
    assert a.status == b.status == 200
    assert "Content-Encoding" not in b.headers or b.headers["Content-Encoding"] == "identity"
    ja, jb = await a.json(), await b.json()
    assert ja == jb
    assert all("quote_price" not in r and "complaints" not in r for r in jb["data"])


async def test_gzip_list_of_rep_is_scoped(make_gateway, crm_gzip):
    gw = await make_gateway(crm_gzip)
    resp = await gw.get("/api/customers?page_size=100", headers={**auth("alice"), "Accept-Encoding": "gzip, br"})
    assert resp.status == 200
    data = (await resp.json())["data"]
    assert data and {r["owner_id"] for r in data} == {"alice"}
