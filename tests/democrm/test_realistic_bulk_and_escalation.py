"""The realistic profile's bulk endpoints, and the CRM's own re-assignment of "escalate" leads."""

from __future__ import annotations

import pytest

from democrm.realistic import PROFILES, REALISTIC_STORE, TEAMS

from .conftest import AS_ALICE, AS_CAROL

MISSING = "00000000-0000-4000-8000-000000000000"


def store(crm):
    return crm.app[REALISTIC_STORE]


def assignees(record) -> list[str]:
    return [person["email"].split("@")[0] for person in record["assigned_to"]]


def teams(record) -> list[str]:
    return [team["name"] for team in record["teams"]]


async def post(crm, path, body, headers=AS_ALICE, status=200, **kwargs):
    response = await crm.post(path, headers=headers, **({"json": body} if body is not None else kwargs))
    assert response.status == status, await response.text()
    return await response.json()


# -- bulk ---------------------------------------------------------------------------------------


async def test_bulk_update_changes_every_listed_lead_and_skips_unknown_ids(realistic):
    ids = [lead["id"] for lead in store(realistic).all("leads")[:3]]
    answer = await post(
        realistic,
        "/api/v2/leads/bulk-update/",
        {"ids": [*ids, MISSING], "assigned_to": [PROFILES["ivan"]], "status": "recycled"},
    )
    assert answer == {"updated": 3, "ids": ids}
    for lead_id in ids:
        lead = store(realistic).get("leads", lead_id)
        assert (assignees(lead), teams(lead), lead["status"]) == (["ivan"], ["west"], "recycled")


async def test_bulk_update_takes_a_form_body(realistic):
    ids = [lead["id"] for lead in store(realistic).all("leads")[:2]]
    body = f"ids[]={ids[0]}&ids[]={ids[1]}&owner=carol%40example.com"
    answer = await post(
        realistic,
        "/api/v2/leads/bulk-update/",
        None,
        data=body,
        headers={**AS_ALICE, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer["updated"] == 2 and all(assignees(store(realistic).get("leads", i)) == ["carol"] for i in ids)


async def test_bulk_update_is_all_or_nothing(realistic):
    before = store(realistic).all("leads")
    answer = await post(
        realistic, "/api/v2/leads/bulk-update/", {"ids": [before[0]["id"]], "status": "won"}, status=400
    )
    assert answer == {"status": ['"won" is not a valid choice.']} and store(realistic).all("leads") == before


@pytest.mark.parametrize("body", [{}, {"ids": []}, {"ids": [1, 2]}, {"ids": {"a": 1}}])
async def test_bulk_endpoints_need_a_list_of_ids(realistic, body):
    for path in ("/api/v2/leads/bulk-update/", "/api/v2/leads/bulk-delete/"):
        assert await post(realistic, path, body, status=400) == {"ids": ["Expected a non-empty list of ids."]}


async def test_bulk_delete_deletes_the_listed_leads_that_exist(realistic):
    ids = [lead["id"] for lead in store(realistic).all("leads")[5:8]]
    assert await post(realistic, "/api/v2/leads/bulk-delete/", {"ids": [MISSING, *ids, ids[0]]}) == {
        "deleted": 3,
        "ids": ids,
    }
    assert store(realistic).count("leads") == 57 and all(store(realistic).get("leads", i) is None for i in ids)


# -- escalation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "title", "expected"),
    [
        (AS_ALICE, "Please escalate", "erin"),  # alice is in east -> the west manager
        (AS_CAROL, "ESCALATE: angry customer", "dave"),  # carol is in west -> the east manager
        (AS_ALICE, "escalate!", "erin"),
    ],
)
async def test_a_created_lead_titled_escalate_goes_to_the_other_teams_manager(realistic, headers, title, expected):
    lead = await post(realistic, "/api/v2/leads/", {"title": title}, headers=headers, status=201)
    assert (assignees(lead), teams(lead)) == ([expected], ["west" if expected == "erin" else "east"])
    assert lead["created_by"] == PROFILES[headers["X-CRM-User"]]
    assert store(realistic).get("leads", lead["id"]) == lead  # committed as answered


async def test_escalation_overrides_given_assignees_and_teams(realistic):
    body = {"title": "escalate", "assigned_to": [PROFILES["ivan"], PROFILES["alice"]], "teams": [TEAMS["support"]]}
    lead = await post(realistic, "/api/v2/leads/", body, status=201)
    assert (assignees(lead), teams(lead)) == (["dave"], ["east"])  # ivan, the first assignee, is in west


@pytest.mark.parametrize("title", ["escalated already", "de-escalation", "no need"])
async def test_only_the_word_escalate_escalates(realistic, title):
    lead = await post(realistic, "/api/v2/leads/", {"title": title}, status=201)
    assert assignees(lead) == ["alice"]


@pytest.mark.parametrize("owner", ["dave", "frank"])
async def test_leads_of_a_manager_or_outside_sales_stay_put(realistic, owner):
    lead = await post(realistic, "/api/v2/leads/", {"title": "escalate", "owner": PROFILES[owner]}, status=201)
    assert assignees(lead) == [owner]


async def test_an_update_that_makes_the_title_escalate_reassigns(realistic):
    lead = next(lead for lead in store(realistic).all("leads") if assignees(lead) == ["bob"])
    response = await realistic.patch(f"/api/v2/leads/{lead['id']}/", headers=AS_ALICE, json={"title": "Escalate now"})
    updated = await response.json()
    assert (assignees(updated), teams(updated)) == (["erin"], ["west"])
    again = await realistic.patch(f"/api/v2/leads/{lead['id']}/", headers=AS_ALICE, json={"title": "escalate again"})
    assert assignees(await again.json()) == ["erin"]  # already with a manager: no ping-pong


async def test_an_update_assigning_an_escalate_lead_to_a_rep_escalates_it_again(realistic):
    lead = await post(realistic, "/api/v2/leads/", {"title": "escalate"}, status=201)
    response = await realistic.patch(
        f"/api/v2/leads/{lead['id']}/", headers=AS_ALICE, json={"owner": PROFILES["carol"]}
    )
    assert assignees(await response.json()) == ["dave"]


async def test_bulk_update_escalates_too(realistic):
    lead_id = next(lead["id"] for lead in store(realistic).all("leads") if assignees(lead)[0] == "carol")
    await post(realistic, "/api/v2/leads/bulk-update/", {"ids": [lead_id], "title": "escalate"})
    assert assignees(store(realistic).get("leads", lead_id)) == ["dave"]
