"""The gateway in front of the realistic demo CRM (UUIDs, trailing slashes, records under two keys,
counts and totals, side lists, sideloads, nested records, human CSV headers): for each shape a rep
(carol, own), a manager (dave, team east) and a support agent (frank, all, masked) receive exactly
what they may, and scope-changing writes are refused before the CRM changes (issue 9)."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from democrm.app import REQUESTS_SEEN
from democrm.app import create_app as create_crm
from democrm.realistic import PROFILES, REALISTIC_STORE, TEAMS
from gateway.app import GATEWAY
from tests.conftest import REPO
from tests.integration.conftest import CRM_TOKEN, auth

RULES = REPO / "examples" / "realistic"
EMAIL = {user: f"{user}@example.com" for user in PROFILES}


@pytest.fixture
async def crm(aiohttp_server):
    return await aiohttp_server(create_crm(profile="realistic", service_token=CRM_TOKEN))


@pytest.fixture
async def gw(make_gateway, crm):
    return await make_gateway(crm, rules=RULES)


def store(crm):
    return crm.app[REALISTIC_STORE]


EAST = {PROFILES[user] for user in ("alice", "bob", "dave")}  # team east in users.yaml


def creator(record: dict) -> str | None:
    made_by = record.get("created_by")
    return made_by["id"] if isinstance(made_by, dict) else made_by


def visible(record: dict, user: str) -> bool:
    """The ground truth of each caller's scope, computed from the CRM's own records: a rep's own
    records are those she created or is assigned to; a manager's team, those tagged east or
    assigned to a member of team east."""
    assignees = {p["id"] for p in record["assigned_to"]}
    if user == "carol":
        return PROFILES["carol"] in assignees or creator(record) == PROFILES["carol"]
    if user == "dave":
        return "east" in {t["name"] for t in record["teams"]} or bool(assignees & EAST)
    return True


def writes_reaching(crm) -> list:
    return [seen for seen in crm.app[REQUESTS_SEEN] if seen.method not in ("GET", "HEAD")]


@pytest.mark.parametrize("user", ["carol", "dave", "frank"])
async def test_list_records_counts_totals_side_lists_and_sideloads(gw, crm, user):
    resp = await gw.get("/api/v2/leads/?limit=100", headers=auth(user))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    want = [r["id"] for r in store(crm).all("leads") if visible(r, user)][:100]
    got = [r["id"] for r in body["results"]]
    assert got == [r["id"] for r in body["leads"]] == want and want
    assert body["count"] == len(want)
    assert "users" not in body and "by_status" not in body.get("totals", {})
    if user == "frank":  # amount is masked: its total is withheld too
        assert "amount_sum" not in body.get("totals", {})
        assert all("amount" not in r and "quote_price" not in r for r in body["results"])
        assert all(set(r["Phone"][:-4]) == {"*"} and set(r["mobilePhone"][:-4]) == {"*"} for r in body["results"])
    else:
        truth = {r["id"]: r for r in store(crm).all("leads")}
        assert body["totals"]["amount_sum"] == pytest.approx(sum(truth[i]["amount"] for i in want))
    for account in body.get("included", []):
        assert visible(account, user)
    for record in body["results"]:
        for contact in record.get("contacts", []):
            assert user != "carol" or PROFILES["carol"] in {p["id"] for p in contact["assigned_to"]}
            assert user != "frank" or set(contact["phone"][:-4]) == {"*"}


@pytest.mark.parametrize("user", ["carol", "dave"])
async def test_a_lead_view_filters_the_related_leads_and_hides_what_is_out_of_scope(gw, crm, user):
    leads = store(crm).all("leads")
    mine = next(r for r in leads if visible(r, user) and r.get("account"))
    body = await (await gw.get(f"/api/v2/leads/{mine['id']}/", headers=auth(user))).json()
    assert body["lead"]["id"] == mine["id"]
    assert all(visible(r, user) for r in body["related"])
    other = next(r for r in leads if not visible(r, user))
    hidden = await gw.get(f"/api/v2/leads/{other['id']}/", headers=auth(user))
    missing = await gw.get("/api/v2/leads/00000000-0000-4000-8000-000000000000/", headers=auth(user))
    assert hidden.status == missing.status == 404
    assert (await hidden.json()).keys() == (await missing.json()).keys()


@pytest.mark.parametrize("user", ["carol", "dave"])
async def test_the_csv_export_with_human_headers_is_scoped_and_masked(gw, crm, user):
    resp = await gw.get("/api/v2/leads/export/", headers=auth(user))
    assert resp.status == 200, await resp.text()
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert sorted(r["ID"] for r in rows) == sorted(r["id"] for r in store(crm).all("leads") if visible(r, user))
    assert rows and "Quote price" not in rows[0]


async def test_undeclared_query_parameters_and_paths_without_the_slash_are_refused(gw, crm):
    for target in ("/api/v2/leads/?include=contacts", "/api/v2/leads/?expand=account", "/api/v2/leads/?limit=500"):
        assert (await gw.get(target, headers=auth("carol"))).status == 400, target
    assert (await gw.get("/api/v2/leads", headers=auth("carol"))).status == 403  # not in the catalogue
    assert list(crm.app[REQUESTS_SEEN]) == []  # none of them reached the CRM


FORM = "application/x-www-form-urlencoded"


def multipart(**fields: str) -> tuple[bytes, str]:
    parts = "".join(f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items())
    return (parts + "--b--\r\n").encode(), "multipart/form-data; boundary=b"


WRITES = [
    # (user, body, content type): each names someone or some team outside the caller's scope
    ("carol", {"title": "t", "assigned_to": [PROFILES["bob"]]}, "application/json"),
    (
        "carol",
        {"title": "t", "assigned_to": [{"id": PROFILES["carol"]}, {"email": "bob@example.com"}]},
        "application/json",
    ),
    ("carol", {"title": "t", "owner": "alice@example.com"}, "application/json"),
    ("carol", {"title": "t", "owner_id": PROFILES["alice"]}, "application/json"),
    ("carol", {"title": "t", "teams": [TEAMS["east"]]}, "application/json"),
    ("carol", f"title=t&assigned_to={PROFILES['carol']}&assigned_to={PROFILES['bob']}".encode(), FORM),
    ("carol", f"title=t&assigned_to%5B%5D={PROFILES['bob']}".encode(), FORM),
    ("carol", *multipart(title="t", owner=PROFILES["bob"])),
    ("dave", {"title": "t", "assigned_to": [PROFILES["carol"]]}, "application/json"),  # west: team derived
    ("dave", {"title": "t", "teams": [TEAMS["west"]]}, "application/json"),
]


@pytest.mark.parametrize(("user", "body", "ctype"), WRITES)
async def test_creates_naming_anyone_outside_scope_are_refused_before_the_crm_acts(gw, crm, user, body, ctype):
    before = store(crm).all("leads")
    data = body if isinstance(body, bytes) else None
    resp = await gw.post(
        "/api/v2/leads/",
        data=data,
        json=None if data else body,
        headers={**auth(user), **({"Content-Type": ctype} if data else {})},
    )
    assert resp.status == 403 and (await resp.json())["reason"] == "write-out-of-scope", await resp.text()
    assert writes_reaching(crm) == [] and store(crm).all("leads") == before


@pytest.mark.parametrize("user", ["carol", "dave"])
async def test_reassigning_or_bulk_moving_own_leads_away_is_refused(gw, crm, user):
    mine = [r for r in store(crm).all("leads") if visible(r, user)][:2]
    away = {"assigned_to": [PROFILES["erin"]]}
    for method, target, body in (
        ("PATCH", f"/api/v2/leads/{mine[0]['id']}/", away),
        ("PUT", f"/api/v2/leads/{mine[0]['id']}/", {"teams": [TEAMS["security"]]}),
        ("POST", "/api/v2/leads/bulk-update/", {"ids": [r["id"] for r in mine], **away}),
    ):
        before = store(crm).all("leads")
        resp = await gw.request(method, target, json=body, headers=auth(user))
        assert resp.status == 403, await resp.text()
        assert store(crm).all("leads") == before
    assert writes_reaching(crm) == []


async def test_a_rep_sees_the_leads_she_created_and_those_assigned_to_her(gw, crm):
    bob = {"id": PROFILES["bob"], "email": "bob@example.com", "name": "Bob Wang"}
    created = store(crm).insert(
        "leads",
        {
            **store(crm).all("leads")[0],
            "id": "5d1e2c1a-0c55-4b8e-9e52-6a0e0c0f0a01",
            "title": "Made by carol",
            "created_by": PROFILES["carol"],
            "assigned_to": [bob],
            "teams": [{"id": TEAMS["east"], "name": "east"}],
        },
    )
    assigned = [
        r
        for r in store(crm).all("leads")
        if creator(r) != PROFILES["carol"] and PROFILES["carol"] in {p["id"] for p in r["assigned_to"]}
    ]
    assert assigned  # the seed has leads others created for her
    got = {r["id"] for r in (await (await gw.get("/api/v2/leads/?limit=100", headers=auth("carol"))).json())["results"]}
    assert {created["id"], *(r["id"] for r in assigned)} <= got
    assert (await gw.get(f"/api/v2/leads/{created['id']}/", headers=auth("alice"))).status == 404


async def test_a_manager_sees_leads_owned_by_team_members_without_a_team_tag(gw, crm):
    untagged = store(crm).insert(
        "leads",
        {
            **store(crm).all("leads")[0],
            "id": "0b7f3b51-5f0a-4f55-9d55-4b1d8e1a1c01",
            "title": "Untagged",
            "teams": [],
            "created_by": PROFILES["grace"],
            "assigned_to": [{"id": PROFILES["alice"], "email": "alice@example.com", "name": "Alice Martin"}],
        },
    )
    body = await (await gw.get(f"/api/v2/leads/{untagged['id']}/", headers=auth("dave"))).json()
    assert body["lead"]["title"] == "Untagged"
    assert (await gw.get(f"/api/v2/leads/{untagged['id']}/", headers=auth("erin"))).status == 404


async def test_in_scope_writes_go_through_and_the_crm_assigns_the_caller(gw, crm):
    resp = await gw.post("/api/v2/leads/", data=b"title=Quiet+deal", headers={**auth("carol"), "Content-Type": FORM})
    assert resp.status == 201, await resp.text()
    created = store(crm).get("leads", (await resp.json())["id"])
    assert [p["id"] for p in created["assigned_to"]] == [PROFILES["carol"]]
    resp = await gw.post(
        "/api/v2/leads/", json={"title": "Team deal", "assigned_to": [PROFILES["bob"]]}, headers=auth("dave")
    )
    assert resp.status == 201, await resp.text()


async def test_a_write_the_crm_commits_out_of_scope_is_audited_as_committed_and_alerted(gw, crm, tmp_path):
    # A lead assigned to carol that someone else created: once the CRM re-assigns it (a title with
    # "escalate" sends it to the other team's manager), it is no longer hers in any way.
    lead = next(
        r
        for r in store(crm).all("leads")
        if [p["id"] for p in r["assigned_to"]] == [PROFILES["carol"]] and creator(r) != PROFILES["carol"]
    )
    resp = await gw.patch(f"/api/v2/leads/{lead['id']}/", json={"title": "Please escalate this"}, headers=auth("carol"))
    assert resp.status == 200
    answer = await resp.json()
    assert answer["reason"] == "write-committed-out-of-scope" and "lead" not in answer and "id" not in answer
    escalated = store(crm).get("leads", lead["id"])
    assert [p["id"] for p in escalated["assigned_to"]] == [PROFILES["dave"]]  # the CRM did it
    line = orjson.loads((tmp_path / "audit.log").read_text().splitlines()[-1])
    assert (line["effect"], line["reason"], line["write"], line["upstream_status"]) == (
        "allow",
        "write-committed-out-of-scope",
        {"committed": True, "out_of_scope": True},
        200,
    )
    alerts = await gw.server.app[GATEWAY].alerts.list(type="write-committed-out-of-scope")
    assert [(a.user, a.level) for a in alerts] == [("carol", "high")]


def test_the_realistic_rules_pass_check_and_their_own_policy_tests(capsys):
    from gateway.cli import main

    assert main(["rules", "check", str(RULES)]) == 0
    assert main(["rules", "test", str(RULES)]) == 0
    out = capsys.readouterr().out
    assert "warning" not in out and " 0 failed" in out
