"""The realistic profile's reads through a real client: list, view, CSV export, routing and errors."""

from __future__ import annotations

import csv
import io

import pytest
from yarl import URL

from democrm.realistic import PROFILES, REALISTIC_STORE, TEAMS
from democrm.realistic.people import user_of_profile

from .conftest import AS_ALICE, SERVICE_ONLY

MISSING = "00000000-0000-4000-8000-000000000000"


async def get_json(crm, path, status=200, headers=AS_ALICE):
    response = await crm.get(path, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()


def store(crm):
    return crm.app[REALISTIC_STORE]


# -- lists --------------------------------------------------------------------------------------


async def test_leads_list_shape(realistic):
    body = await get_json(realistic, "/api/v2/leads/")
    assert list(body) == ["count", "next", "previous", "results", "leads", "totals", "users", "included"]
    assert body["count"] == 60 and body["previous"] is None
    assert body["results"] == body["leads"] == store(realistic).all("leads")[:20]
    assert body["next"].endswith("/api/v2/leads/?page=2") and body["next"].startswith("http://")


async def test_totals_users_and_included_are_crm_wide_side_data(realistic):
    everything = store(realistic).all("leads")
    body = await get_json(realistic, "/api/v2/leads/?limit=3&search=for")
    assert body["totals"]["amount_sum"] == round(sum(lead["amount"] for lead in everything), 2)
    assert sum(body["totals"]["by_status"].values()) == 60
    assert [u["id"] for u in body["users"]] == list(PROFILES.values())  # every user, not just the page's
    referenced = list(dict.fromkeys(lead["account"] for lead in body["results"] if lead["account"]))
    assert [a["id"] for a in body["included"]] == referenced
    assert body["included"][0] == store(realistic).get("accounts", referenced[0])  # full account records


async def test_pages_link_to_each_other(realistic):
    second = await get_json(realistic, "/api/v2/leads/?limit=25&page=2")
    assert [r["id"] for r in second["results"]] == [r["id"] for r in store(realistic).all("leads")[25:50]]
    assert second["previous"].endswith("?limit=25&page=1") and second["next"].endswith("?limit=25&page=3")
    last = await get_json(realistic, URL(second["next"]).path_qs)
    assert (len(last["results"]), last["next"]) == (10, None)


async def test_limit_is_capped_at_500_and_a_bad_limit_is_the_default(make_realistic):
    crm = await make_realistic(leads=501)
    assert len((await get_json(crm, "/api/v2/leads/?limit=100000"))["results"]) == 500
    assert len((await get_json(crm, "/api/v2/leads/?limit=abc"))["results"]) == 20
    assert len((await get_json(crm, "/api/v2/leads/?limit=0"))["results"]) == 20


@pytest.mark.parametrize("query", ["page=4", "page=0", "page=abc", "page=-1"])
async def test_a_page_that_does_not_exist_is_a_drf_404(realistic, query):
    assert await get_json(realistic, f"/api/v2/leads/?{query}", status=404) == {"detail": "Invalid page."}


async def test_a_repeated_parameter_counts_its_last_value(realistic):
    assert len((await get_json(realistic, "/api/v2/leads/?limit=1&limit=5"))["results"]) == 5


async def test_search_and_status_filter_the_records_and_the_count(realistic):
    first = store(realistic).all("leads")[0]  # "Support contract for ...", in process
    word, status = first["title"].split()[0], first["status"]
    body = await get_json(realistic, f"/api/v2/leads/?status={status}&search={word.upper()}&limit=500")
    expected = [
        lead
        for lead in store(realistic).all("leads")
        if lead["status"] == status and word.lower() in lead["title"].lower()
    ]
    assert body["count"] == len(expected) > 0 and body["results"] == expected
    assert body["totals"]["amount_sum"] > sum(lead["amount"] for lead in expected)  # totals ignore filters


async def test_fields_keeps_only_the_asked_keys_even_without_the_owners(realistic):
    body = await get_json(realistic, "/api/v2/leads/?fields=id,title,nonsense&limit=2")
    assert all(list(record) == ["id", "title"] for record in body["results"] + body["leads"])


async def test_expand_nests_the_account_and_the_creator(realistic):
    body = await get_json(realistic, "/api/v2/leads/?expand=account,created_by&limit=60")
    lead = next(r for r in body["results"] if r["account"])
    raw = store(realistic).get("leads", lead["id"])
    assert lead["account"] == store(realistic).get("accounts", raw["account"])
    assert lead["created_by"]["id"] == raw["created_by"] and set(lead["created_by"]) == {"id", "email", "name"}


async def test_include_contacts_adds_every_nested_contact_of_the_page(realistic):
    body = await get_json(realistic, "/api/v2/leads/?include=contacts&limit=10")
    nested = [(lead["id"], c) for lead in body["results"] for c in lead["contacts"]]
    assert body["contacts"] == [{"lead": lead_id, **contact} for lead_id, contact in nested]
    assert "contacts" not in await get_json(realistic, "/api/v2/leads/?limit=10")


async def test_accounts_list_shape(realistic):
    body = await get_json(realistic, "/api/v2/accounts/?search=a")
    assert list(body) == ["count", "next", "previous", "results", "users"]
    assert body["results"][0]["created_by"].keys() == {"id", "email"}


async def test_the_service_token_alone_reads_everything(realistic):
    body = await get_json(realistic, "/api/v2/leads/?limit=500", headers=SERVICE_ONLY)
    assert body["results"] == store(realistic).all("leads")


# -- single records -----------------------------------------------------------------------------


async def test_lead_view_has_the_lead_and_full_related_leads_of_its_account(realistic):
    leads = store(realistic).all("leads")
    lead = next(lead for lead in leads if sum(other["account"] == lead["account"] for other in leads) > 2)
    body = await get_json(realistic, f"/api/v2/leads/{lead['id']}/")
    assert list(body) == ["lead", "related"] and body["lead"] == lead
    assert 1 <= len(body["related"]) <= 3
    assert all(
        r["account"] == lead["account"] and r["id"] != lead["id"] and r == store(realistic).get("leads", r["id"])
        for r in body["related"]
    )


async def test_a_lead_without_account_has_no_related(realistic):
    lead = next(lead for lead in store(realistic).all("leads") if lead["account"] is None)
    assert (await get_json(realistic, f"/api/v2/leads/{lead['id']}/"))["related"] == []


async def test_account_view_is_the_record_itself(realistic):
    account = store(realistic).all("accounts")[4]
    assert await get_json(realistic, f"/api/v2/accounts/{account['id']}/") == account


@pytest.mark.parametrize(
    "path", [f"/api/v2/leads/{MISSING}/", "/api/v2/leads/not-a-uuid/", f"/api/v2/accounts/{MISSING}/"]
)
async def test_an_unknown_id_is_a_drf_404(realistic, path):
    assert await get_json(realistic, path, status=404) == {"detail": "Not found."}


async def test_an_upper_case_uuid_is_not_the_record(realistic):
    lead_id = store(realistic).all("leads")[0]["id"]
    assert (await realistic.get(f"/api/v2/leads/{lead_id.upper()}/", headers=AS_ALICE)).status == 404


# -- CSV export ---------------------------------------------------------------------------------


async def test_csv_export_has_human_headers_and_email_addresses(realistic):
    response = await realistic.get("/api/v2/leads/export/", headers=AS_ALICE)
    assert response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert list(rows[0]) == [
        "ID",
        "Title",
        "Amount",
        "Status",
        "Created by",
        "Assigned to",
        "Team",
        "Phone Number",
        "Email",
        "Quote price",
    ]
    leads = store(realistic).all("leads")
    assert [row["ID"] for row in rows] == [lead["id"] for lead in leads]
    for row, lead in zip(rows, leads):
        assert row["Created by"] == f"{user_of_profile(lead['created_by'])}@example.com"
        assert row["Assigned to"] == "; ".join(p["email"] for p in lead["assigned_to"])
        assert row["Team"] == "; ".join(t["name"] for t in lead["teams"])
        assert (row["Phone Number"], float(row["Amount"])) == (lead["Phone"], lead["amount"])
    assert any("; " in row["Assigned to"] for row in rows)


async def test_csv_export_follows_the_filters(realistic):
    text = await (await realistic.get("/api/v2/leads/export/?status=closed", headers=AS_ALICE)).text()
    assert {row["Status"] for row in csv.DictReader(io.StringIO(text))} == {"closed"}


# -- routing and errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/leads",
        "/api/v2/accounts",
        "/api/v2/leads/export",
        "/api/v2/leads/bulk-delete",
        "/api/v2/leads/bulk-update",
        "/api/v2/leads/{lead}",
        "/api/v2/accounts/{account}",
        "/api/v2",
        "/api/leads/",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_path_without_its_trailing_slash_is_a_404_not_a_redirect(realistic, path, method):
    path = path.format(lead=store(realistic).all("leads")[0]["id"], account=store(realistic).all("accounts")[0]["id"])
    response = await realistic.request(method, path, headers=AS_ALICE, json={"ids": []}, allow_redirects=False)
    assert (response.status, await response.json()) == (404, {"detail": "Not found."})
    assert store(realistic).count("leads") == 60


async def test_a_wrong_method_is_a_drf_405_with_allow(realistic):
    response = await realistic.delete("/api/v2/leads/", headers=AS_ALICE)
    assert (response.status, await response.json()) == (405, {"detail": 'Method "DELETE" not allowed.'})
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("headers", [{}, {"X-CRM-User": "alice"}, {"Authorization": "Bearer wrong"}])
async def test_without_login_the_answer_is_a_drf_401(realistic, headers):
    assert await get_json(realistic, "/api/v2/leads/", status=401, headers=headers) == {
        "detail": "Authentication credentials were not provided."
    }


async def test_team_uuids_in_answers_are_the_pinned_ones(realistic):
    teams = {t["id"] for lead in store(realistic).all("leads") for t in lead["teams"]}
    assert teams <= set(TEAMS.values()) and {TEAMS["east"], TEAMS["west"]} <= teams
