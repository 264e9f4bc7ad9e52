"""Access requests end to end: the real gateway in front of the demo CRM, real Redis, the gateway's
test clock. carol (a rep, manager erin) asks for customers.export with scope own until a time;
erin approves; carol exports (her own customers only) until the end and not after; a revocation
ends it at once (also from another replica); a role change in users.yaml under the running gateway
ends it at the next reload; an off-boarding ends everything (access requests and four-eyes
approvals), each revocation audited.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import timedelta

import orjson
import pytest

from gateway.app import GATEWAY
from gateway.explain import explain
from tests.integration.conftest import auth

API = "/_gw/api/access-requests"
EXPORT = "/api/customers/export.csv"


@pytest.fixture
async def gw(make_gateway, crm, rules_copy, redis_url):
    return await make_gateway(crm, rules=rules_copy, redis_url=redis_url, reload_settle=0.2)


def gateway_of(client):
    return client.server.app[GATEWAY]


def audit_lines(client) -> list[dict]:
    path = gateway_of(client).audit.path
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


async def ask(client, clock, *, by="carol", user=None, hours=2, ops=("customers.export",), scope="own") -> dict:
    body = {
        "operations": list(ops),
        "data_scope": scope,
        "until": (clock() + timedelta(hours=hours)).isoformat(),
        "reason": "pipeline review, ticket SEC-7",
    }
    if user:
        body["user"] = user
    resp = await client.post(API, json=body, headers=auth(by))
    data = await resp.json()
    assert resp.status == 201, data
    assert data["status"] == "pending" and data["id"].startswith("access-")
    return data


async def act(client, request_id: str, verb: str, actor: str, status: int = 200, note: str = "ok") -> dict:
    resp = await client.post(f"{API}/{request_id}/{verb}", json={"note": note}, headers=auth(actor))
    data = await resp.json()
    assert resp.status == status, data
    return data


async def export(client, user="carol"):
    resp = await client.get(EXPORT, headers=auth(user))
    return resp.status, await resp.text()


async def approved_export(client, clock) -> str:
    req = await ask(client, clock)
    assert (await export(client))[0] == 403
    await act(client, req["id"], "approve", "erin")
    status, text = await export(client)
    assert status == 200, text
    return req["id"]


async def test_an_approved_request_lets_carol_export_her_own_customers_until_its_end(gw, clock):
    status, text = await export(gw)
    assert status == 403 and orjson.loads(text)["reason"] == "default-deny"
    req = await ask(gw, clock, hours=2)
    assert (await export(gw))[0] == 403  # pending grants nothing
    await act(gw, req["id"], "approve", "carol", status=403)  # never the requester
    for other in ("bob", "dave", "frank", "heidi"):  # a rep, another team's manager, support, an analyst
        refused = await act(gw, req["id"], "approve", other, status=403)
        assert refused["reason"] == "not-an-approver"
    approved = await act(gw, req["id"], "approve", "erin", note="for the review")
    assert approved["status"] == "approved" and approved["decided_by"] == "erin"

    status, text = await export(gw)
    assert status == 200, text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and {r["owner_id"] for r in rows} == {"carol"}  # scope own
    line = [r for r in audit_lines(gw) if r.get("path") == EXPORT][-1]
    assert line["effect"] == "allow" and line["rules"] == [req["id"]]  # the decision names the grant

    g = gateway_of(gw)  # crmgw explain: the same decision, naming the grant
    grants = tuple(r.grant() for r in await g.access.list(status={"approved"}) if r.user == "carol")
    explained = explain(g.store.current, user="carol", method="GET", path=EXPORT, at=clock(), grants=grants)
    assert explained.decision.allowed and explained.decision.rules == (req["id"],)

    clock.set(clock() + timedelta(hours=1, minutes=59))
    assert (await export(gw))[0] == 200
    clock.set(clock() + timedelta(minutes=1))  # its end: no longer
    status, text = await export(gw)
    assert status == 403 and orjson.loads(text)["reason"] == "default-deny"
    listed = await (await gw.get(API, headers=auth("carol"))).json()
    assert [r["status"] for r in listed if r["id"] == req["id"]] == ["expired"]
    events = [r["event"] for r in audit_lines(gw) if r.get("kind") == "access"]
    assert events == ["access.requested", "access.approved"]


async def test_revoking_ends_it_at_once_also_on_another_replica(gw, make_gateway, crm, rules_copy, redis_url, clock):
    other = await make_gateway(crm, rules=rules_copy, redis_url=redis_url)  # a second replica
    request_id = await approved_export(gw, clock)
    await gateway_of(other).access.refresh_active()  # its snapshot (refreshed every second)
    assert (await export(other))[0] == 200
    await act(gw, request_id, "revoke", "bob", status=403)  # not his to revoke
    revoked = await act(gw, request_id, "revoke", "carol", note="done early")  # the user gives it up
    assert revoked["status"] == "revoked" and revoked["revoked_by"] == "carol"
    assert (await export(gw))[0] == 403
    assert (await export(other))[0] == 403  # at once: the grant is re-read before it is applied
    await act(gw, request_id, "revoke", "erin", status=409)


async def test_a_manager_asks_for_a_report_and_an_admin_approves_never_the_asker(gw, clock):
    req = await ask(gw, clock, by="erin", user="carol")
    assert req["requested_by"] == "erin" and req["user"] == "carol"
    assert (await act(gw, req["id"], "approve", "erin", status=403))["reason"] == "own-request"
    await act(gw, req["id"], "approve", "grace")  # an approver role (admin)
    assert (await export(gw))[0] == 200
    # Nobody asks for someone they do not manage; operations and scopes are checked
    resp = await gw.post(
        API,
        json={
            "user": "carol",
            "operations": ["customers.export"],
            "until": (clock() + timedelta(hours=1)).isoformat(),
            "reason": "x",
        },
        headers=auth("dave"),
    )
    assert resp.status == 403 and (await resp.json())["reason"] == "not-allowed-to-request"
    for body, reason in (
        ({"operations": ["customers.nope"]}, "operation-unknown"),
        ({"operations": ["customers.export"], "until": clock().isoformat()}, "until-past"),
        ({"operations": ["customers.export"], "reason": ""}, "reason-missing"),
    ):
        full = {"until": (clock() + timedelta(hours=1)).isoformat(), "reason": "x", **body}
        resp = await gw.post(API, json=full, headers=auth("carol"))
        assert resp.status == 400 and (await resp.json())["reason"] == reason
    assert (await gw.post(API, json={}, headers={})).status == 401


async def test_rejected_requests_grant_nothing(gw, clock):
    req = await ask(gw, clock)
    rejected = await act(gw, req["id"], "reject", "erin", note="no ticket")
    assert rejected["status"] == "rejected"
    assert (await export(gw))[0] == 403
    await act(gw, req["id"], "approve", "erin", status=409)


def edit_user(rules, user: str, **changes) -> None:
    """Change ``user``'s keys in users.yaml, written aside and renamed (an atomic publish)."""
    path = rules / "users.yaml"
    text = path.read_text()
    start = text.index(f"\n  {user}:\n")
    end = re.search(r"\n  [\w-]+:\n", text[start + 2 :])
    block = text[start : start + 2 + end.start()] if end else text[start:]
    new = block
    for key, value in changes.items():
        new = re.sub(rf"(\n    {key}: ).*", rf"\g<1>{value}", new)
    tmp = path.with_name("users.yaml.tmp")
    tmp.write_text(text.replace(block, new))
    tmp.rename(path)


async def wait_for(predicate, timeout: float = 10.0):
    for _ in range(int(timeout / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def status_of(client, request_id: str) -> str:
    return (await gateway_of(client).access.get(request_id)).status


async def test_a_role_change_ends_it_at_the_next_reload(gw, clock, rules_copy):
    request_id = await approved_export(gw, clock)
    other = await ask(gw, clock, by="alice")  # alice is not changed: hers stays
    edit_user(rules_copy, "carol", roles="[support_agent]")

    async def revoked():
        return await status_of(gw, request_id) == "revoked"

    await wait_for(revoked)
    assert (await export(gw))[0] == 403
    assert await status_of(gw, other["id"]) == "pending"
    line = [r for r in audit_lines(gw) if r.get("event") == "access.revoked"]
    assert len(line) == 1 and line[0]["actor"] == "gateway" and line[0]["via"] == "directory"
    assert line[0]["note"] == "directory-changed: roles" and line[0]["access_request"] == request_id


@pytest.mark.slow  # over a second
async def test_a_team_change_revokes_too_but_an_unrelated_edit_does_not(gw, clock, rules_copy):
    request_id = await approved_export(gw, clock)
    edit_user(rules_copy, "carol", region="apac")  # not a role, team, department or status
    await wait_for(lambda: _reloaded(gw, 1))
    await asyncio.sleep(0.3)
    assert await status_of(gw, request_id) == "approved"
    edit_user(rules_copy, "carol", team="east")
    await wait_for(lambda: _is(gw, request_id, "revoked"))


async def _reloaded(client, count: int) -> bool:
    return gateway_of(client).store.status.reloads >= count


async def _is(client, request_id: str, status: str) -> bool:
    return await status_of(client, request_id) == status


@pytest.fixture
async def gw4(make_gateway, crm, approval_rules, redis_url):
    return await make_gateway(crm, rules=approval_rules, redis_url=redis_url, reload_settle=0.2)


async def test_an_offboarding_ends_everything_at_once(gw4, clock, approval_rules):
    gw = gw4
    approved_id = await approved_export(gw, clock)
    pending = await ask(gw, clock, ops=("customers.export",), hours=3)
    # a four-eyes approval of carol's (a rep's edit needs her manager): pending
    resp = await gw.get("/api/customers?page_size=200", headers=auth("carol"))
    mine = (await resp.json())["data"][0]["id"]
    resp = await gw.patch(f"/api/customers/{mine}", json={"name": "Renamed"}, headers=auth("carol"))
    body = await resp.json()
    assert resp.status == 403 and body["reason"] == "approval-required", body
    approval_id = body["approval_id"]

    edit_user(approval_rules, "carol", status="offboarded")
    await wait_for(lambda: _is(gw, pending["id"], "revoked"))
    await wait_for(lambda: _is(gw, approved_id, "revoked"))
    approvals = gateway_of(gw).approvals

    async def approval_revoked():
        return (await approvals.get(approval_id)).status == "revoked"

    await wait_for(approval_revoked)
    status, text = await export(gw)
    assert status == 403 and orjson.loads(text)["reason"] == "user-inactive"
    lines = audit_lines(gw)
    revoked = {r["access_request"]: r["note"] for r in lines if r.get("event") == "access.revoked"}
    assert revoked == {approved_id: "user-offboarded", pending["id"]: "user-offboarded"}
    line = [r for r in lines if r.get("event") == "approval.revoked"]
    assert len(line) == 1 and line[0]["approval_id"] == approval_id and line[0]["actor"] == "gateway"


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", API),
        ("POST", API),
        ("GET", f"{API}/x"),
        ("POST", f"{API}/x/approve"),
        ("POST", f"{API}/x/reject"),
        ("POST", f"{API}/x/revoke"),
    ],
)
async def test_the_api_needs_an_authenticated_directory_user(gw, method, path):
    resp = await gw.request(method, path, json={})
    assert resp.status == 401
    resp = await gw.request(method, path, json={}, headers=auth("ivan"))  # off-boarded
    assert resp.status == 403 and (await resp.json())["reason"] == "user-inactive"
