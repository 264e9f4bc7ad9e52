"""The realistic profile's writes: every body form, owners, the caller default, team derivation."""

from __future__ import annotations

import pytest
from aiohttp import FormData

from democrm.realistic import PROFILES, REALISTIC_STORE, TEAMS

from .conftest import AS_ALICE, AS_CAROL, SERVICE_ONLY

FORM = {**AS_ALICE, "Content-Type": "application/x-www-form-urlencoded"}


def store(crm):
    return crm.app[REALISTIC_STORE]


def assignees(record) -> list[str]:
    return [person["email"].split("@")[0] for person in record["assigned_to"]]


def teams(record) -> list[str]:
    return [team["name"] for team in record["teams"]]


async def create(crm, body=None, status=201, headers=AS_ALICE, resource="leads", **kwargs):
    response = await crm.post(
        f"/api/v2/{resource}/", headers=headers, **({"json": body} if body is not None else kwargs)
    )
    assert response.status == status, await response.text()
    return await response.json()


# -- create: the body forms ---------------------------------------------------------------------


async def test_a_json_create_answers_201_with_the_record_as_listed(realistic):
    lead = await create(
        realistic,
        {
            "title": "New",
            "amount": 12.5,
            "assigned_to": [PROFILES["carol"]],
            "Phone": "+33 1 00 00 00 00",
            "status": "in process",
            "nonsense": 1,
        },
    )
    assert store(realistic).get("leads", lead["id"]) == lead
    listed = (await (await realistic.get("/api/v2/leads/?limit=500", headers=AS_ALICE)).json())["results"]
    assert listed[-1] == lead
    assert (lead["title"], lead["amount"], lead["status"], assignees(lead), teams(lead)) == (
        "New",
        12.5,
        "in process",
        ["carol"],
        ["west"],
    )
    assert lead["created_by"] == PROFILES["alice"] and "nonsense" not in lead


@pytest.mark.parametrize(
    "owners",
    [
        {"assigned_to": [PROFILES["carol"], PROFILES["bob"]]},
        {"assigned_to": [{"id": PROFILES["carol"]}, {"email": "bob@example.com"}]},
        {"assigned_to": ["carol@example.com", {"id": PROFILES["bob"], "email": "ignored@example.com"}]},
    ],
)
async def test_assignees_by_uuid_email_or_object(realistic, owners):
    assert assignees(await create(realistic, {"title": "x", **owners})) == ["carol", "bob"]


@pytest.mark.parametrize(
    "owners",
    [
        {"assigned_to": PROFILES["carol"]},
        {"owner": PROFILES["carol"]},
        {"owner_id": "carol@example.com"},
        {"owner": {"id": PROFILES["carol"]}},
        {"assigned_to": [], "owner": PROFILES["carol"]},
        {"assigned_to": PROFILES["carol"], "owner": PROFILES["bob"]},  # assigned_to wins over the aliases
    ],
)
async def test_a_single_string_and_the_owner_aliases(realistic, owners):
    assert assignees(await create(realistic, {"title": "x", **owners})) == ["carol"]


@pytest.mark.parametrize(
    "body",
    [
        f"title=Form&amount=3.5&assigned_to={PROFILES['carol']}&assigned_to={PROFILES['bob']}",
        f"title=Form&amount=3.5&assigned_to[]={PROFILES['carol']}&assigned_to[]={PROFILES['bob']}",
        f"title=Form&amount=3.5&assigned_to[0]={PROFILES['carol']}&assigned_to[1]=bob%40example.com",
    ],
)
async def test_urlencoded_bodies_with_repeated_and_php_keys(realistic, body):
    lead = await create(realistic, data=body, headers=FORM)
    assert (lead["title"], lead["amount"], assignees(lead), teams(lead)) == (
        "Form",
        3.5,
        ["carol", "bob"],
        ["west", "east"],
    )


async def test_a_repeated_scalar_form_key_keeps_its_last_value(realistic):
    assert (await create(realistic, data="title=first&title=last", headers=FORM))["title"] == "last"


async def test_multipart_bodies(realistic):
    form = FormData()
    form.add_field("title", "Multipart")
    form.add_field("assigned_to", PROFILES["carol"])
    form.add_field("assigned_to[]", PROFILES["ivan"])
    form.add_field("teams", TEAMS["support"])
    form.add_field("attachment", b"ignored", filename="a.txt")
    lead = await create(realistic, data=form)
    assert (lead["title"], assignees(lead), teams(lead)) == ("Multipart", ["carol", "ivan"], ["support"])


# -- create: defaults ---------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{"title": "x"}, {"title": "x", "assigned_to": []}, {"title": "x", "assigned_to": ""}])
async def test_no_assignee_means_the_caller_who_is_also_the_creator(realistic, body):
    lead = await create(realistic, body, headers=AS_CAROL)
    assert (assignees(lead), teams(lead), lead["created_by"]) == (["carol"], ["west"], PROFILES["carol"])


async def test_the_creator_is_the_caller_not_the_assignee_and_not_the_body(realistic):
    lead = await create(realistic, {"title": "x", "assigned_to": [PROFILES["bob"]], "created_by": PROFILES["grace"]})
    assert (lead["created_by"], assignees(lead)) == (PROFILES["alice"], ["bob"])


async def test_without_caller_an_assignee_must_be_named(realistic):
    assert await create(realistic, {"title": "x"}, status=400, headers=SERVICE_ONLY) == {
        "assigned_to": ["This field is required."]
    }
    lead = await create(realistic, {"title": "x", "owner": PROFILES["bob"]}, headers=SERVICE_ONLY)
    assert (assignees(lead), lead["created_by"]) == (["bob"], None)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, ["east", "west"]),
        ({"teams": []}, ["east", "west"]),
        ({"teams": [TEAMS["security"]]}, ["security"]),  # kept as given, even when it disagrees
        ({"teams": TEAMS["it"]}, ["it"]),
        ({"teams": [{"id": TEAMS["it"]}, "support"]}, ["it", "support"]),
    ],
)
async def test_teams_are_derived_from_the_assignees_unless_given(realistic, given, expected):
    lead = await create(realistic, {"title": "x", "assigned_to": [PROFILES["dave"], PROFILES["erin"]], **given})
    assert teams(lead) == expected
    assert all(team["id"] == TEAMS[team["name"]] for team in lead["teams"])


async def test_the_account_is_checked_and_defaults_are_filled(realistic):
    account = store(realistic).all("accounts")[0]["id"]
    lead = await create(realistic, {"title": "x", "account": account})
    assert (lead["account"], lead["amount"], lead["status"], lead["contacts"], lead["quote_price"]) == (
        account,
        0.0,
        "assigned",
        [],
        None,
    )
    assert await create(realistic, {"title": "x", "account": PROFILES["bob"]}, status=400) == {
        "account": [f'Invalid pk "{PROFILES["bob"]}" - object does not exist.']
    }


async def test_accounts_are_created_with_a_creator_object(realistic):
    account = await create(
        realistic, {"name": "Acme", "owner": "bob@example.com", "annual_revenue": "1000"}, resource="accounts"
    )
    assert account["created_by"] == {"id": PROFILES["alice"], "email": "alice@example.com"}
    assert (assignees(account), teams(account), account["annual_revenue"]) == (["bob"], ["east"], 1000.0)
    assert store(realistic).get("accounts", account["id"]) == account


# -- create: refusals ---------------------------------------------------------------------------


async def test_every_problem_of_a_body_is_reported_drf_style(realistic):
    body = {"title": "", "amount": "lots", "status": "won", "assigned_to": ["bob", PROFILES["bob"]], "teams": ["nope"]}
    assert await create(realistic, body, status=400) == {
        "title": ["This field may not be blank."],
        "amount": ["A valid number is required."],
        "status": ['"won" is not a valid choice.'],
        "assigned_to": ['Invalid pk "bob" - object does not exist.'],
        "teams": ['Invalid pk "nope" - object does not exist.'],
    }
    assert store(realistic).count("leads") == 60


@pytest.mark.parametrize(
    ("data", "content_type", "status", "answer"),
    [
        (
            b"{",
            "application/json",
            400,
            {"detail": "JSON parse error - unexpected end of data: line 1 column 2 (char 1)"},
        ),
        (b"[1]", "application/json", 400, {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        (b"title=x", "text/plain", 415, {"detail": 'Unsupported media type "text/plain" in request.'}),
        (b"", "application/json", 400, {"title": ["This field is required."]}),
    ],
)
async def test_unreadable_bodies(realistic, data, content_type, status, answer):
    assert (
        await create(realistic, data=data, headers={**AS_ALICE, "Content-Type": content_type}, status=status) == answer
    )


# -- update and delete --------------------------------------------------------------------------


def a_lead(crm, user="alice"):
    return next(lead for lead in store(crm).all("leads") if assignees(lead) == [user] and lead["account"])


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_an_update_is_partial_and_a_new_assignee_brings_their_team(realistic, method):
    lead = a_lead(realistic)
    response = await realistic.request(
        method, f"/api/v2/leads/{lead['id']}/", headers=AS_ALICE, json={"assigned_to": [PROFILES["carol"]], "amount": 1}
    )
    updated = await response.json()
    assert response.status == 200 and updated == store(realistic).get("leads", lead["id"])
    assert (assignees(updated), teams(updated), updated["amount"]) == (["carol"], ["west"], 1.0)
    assert {k: v for k, v in updated.items() if k not in ("assigned_to", "teams", "amount")} == {
        k: v for k, v in lead.items() if k not in ("assigned_to", "teams", "amount")
    }


@pytest.mark.parametrize(
    ("body", "expected_teams"),
    [
        ({"status": "closed"}, ["east"]),  # not reassigned: teams untouched
        ({"teams": [TEAMS["security"]]}, ["security"]),
        ({"owner": PROFILES["carol"], "teams": [TEAMS["east"]]}, ["east"]),
    ],
)
async def test_teams_on_update(realistic, body, expected_teams):
    lead = a_lead(realistic)
    updated = await (await realistic.patch(f"/api/v2/leads/{lead['id']}/", headers=AS_ALICE, json=body)).json()
    assert teams(updated) == expected_teams


async def test_a_form_update(realistic):
    lead = a_lead(realistic)
    response = await realistic.patch(
        f"/api/v2/leads/{lead['id']}/", headers=FORM, data=f"assigned_to[]={PROFILES['ivan']}&status=closed"
    )
    assert (assignees(await response.json()), store(realistic).get("leads", lead["id"])["status"]) == (
        ["ivan"],
        "closed",
    )


async def test_an_update_cannot_empty_the_assignees(realistic):
    lead = a_lead(realistic)
    response = await realistic.patch(f"/api/v2/leads/{lead['id']}/", headers=AS_ALICE, json={"assigned_to": []})
    assert (response.status, await response.json()) == (400, {"assigned_to": ["This list may not be empty."]})
    assert store(realistic).get("leads", lead["id"]) == lead


async def test_delete_is_a_204_then_a_404(realistic):
    lead = a_lead(realistic)
    first = await realistic.delete(f"/api/v2/leads/{lead['id']}/", headers=AS_ALICE)
    assert (first.status, await first.read()) == (204, b"")
    again = await realistic.delete(f"/api/v2/leads/{lead['id']}/", headers=AS_ALICE)
    assert (again.status, await again.json()) == (404, {"detail": "Not found."})
    assert store(realistic).get("leads", lead["id"]) is None


async def test_deleting_an_account_leaves_its_leads_without_one(realistic):
    account = a_lead(realistic)["account"]
    assert (await realistic.delete(f"/api/v2/accounts/{account}/", headers=AS_ALICE)).status == 204
    assert all(lead["account"] != account for lead in store(realistic).all("leads"))
    assert store(realistic).count("leads") == 60


async def test_an_account_update(realistic):
    account = store(realistic).all("accounts")[0]
    response = await realistic.put(
        f"/api/v2/accounts/{account['id']}/", headers=AS_ALICE, json={"owner_id": PROFILES["erin"]}
    )
    updated = await response.json()
    assert (assignees(updated), teams(updated), updated["created_by"]) == (["erin"], ["west"], account["created_by"])
