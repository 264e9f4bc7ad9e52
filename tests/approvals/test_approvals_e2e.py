"""Four-eyes approvals end to end: the real gateway in front of the demo CRM, real Redis.

A bulk delete by a sales manager (dave) is refused 403 approval-required with an approval id, the
same request asks for the same approval, another sales manager (erin) approves it, the request then
passes once and only once. Rejected and expired approvals never pass (the gateway's test clock
moves time); nobody decides their own request; two gateway replicas racing for one approval use it
exactly once. A rep's edit needs their manager (the directory's ``manager:``), nobody else.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
import orjson
import pytest

from gateway.app import GATEWAY, create_app
from gateway.approvals.model import ApprovalError
from gateway.rulestore import RuleStore
from tests.integration.conftest import CRM_TOKEN, auth, gateway_settings

BULK = "/api/customers/bulk-delete"


async def crm_customers(crm) -> list[dict]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(crm.make_url("/api/customers?page_size=200"), headers={"Authorization": f"Bearer {CRM_TOKEN}"}) as r,
    ):
        return (await r.json())["data"]


@pytest.fixture
async def gw(make_gateway, crm, approval_rules, redis_url):
    return await make_gateway(crm, rules=approval_rules, redis_url=redis_url)


@pytest.fixture
async def east(crm) -> list[int]:
    return [r["id"] for r in await crm_customers(crm) if r["team"] == "east"]


def store_of(client):
    return client.server.app[GATEWAY].approvals


def directory_of(client):
    return client.server.app[GATEWAY].store.current.directory


def audit_lines(client) -> list[dict]:
    path = client.server.app[GATEWAY].audit.path
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


async def refused(resp, reason: str = "approval-required") -> str:
    body = await resp.json()
    assert resp.status == 403, body
    assert body["reason"] == reason, body
    assert body["rule"] == "bulk-delete-needs-second-manager" or body["rule"] == "rep-customer-edits-need-manager"
    return body["approval_id"]


async def test_bulk_delete_is_refused_approved_by_another_manager_then_passes_once(gw, east, crm):
    ids = east[:2]
    first = await refused(await gw.post(BULK, json={"ids": ids}, headers=auth("dave")))
    assert await refused(await gw.post(BULK, json={"ids": ids}, headers=auth("dave"))) == first  # idempotent
    other = await refused(await gw.post(BULK, json={"ids": east[2:3]}, headers=auth("dave")))
    assert other != first  # another body is another request
    assert len(await crm_customers(crm)) > 0 and {r["id"] for r in await crm_customers(crm)} >= set(
        ids
    )  # nothing deleted

    store, directory = store_of(gw), directory_of(gw)
    approval = await store.decide(first, approve=True, actor="erin", note="month-end clean-up", directory=directory)
    assert approval.status == "approved" and approval.decided_by == "erin"

    resp = await gw.post(BULK, json={"ids": ids}, headers=auth("dave"))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["deleted"] == 2
    # Once only: the records are gone now, so the identical request is refused before the approval
    # check (404, like a missing record); the approval stays used up (a rep's edit, below, shows the
    # identical request needing a new approval).
    resp = await gw.post(BULK, json={"ids": ids}, headers=auth("dave"))
    assert resp.status == 404
    assert (await store.get(first)).status == "consumed"

    lines = [r for r in audit_lines(gw) if r.get("approval")]
    assert [(r["reason"], r["approval"]["state"]) for r in lines] == [
        ("approval-required", "required"),
        ("approval-required", "pending"),
        ("approval-required", "required"),
        ("allowed", "consumed"),
    ]
    used = lines[3]
    assert used["effect"] == "allow" and used["status"] == 200
    assert used["approval"] == {
        "id": first,
        "state": "consumed",
        "rule": "bulk-delete-needs-second-manager",
        "approved_by": "erin",
        "approved_at": approval.decided_at,
    }
    assert lines[0]["effect"] == "deny" and lines[0]["status"] == 403 and lines[0]["approval"]["id"] == first


async def test_a_single_delete_needs_no_approval(gw, east):
    resp = await gw.delete(f"/api/customers/{east[0]}", headers=auth("dave"))
    assert resp.status in (200, 204), await resp.text()


async def test_nobody_decides_their_own_request_and_only_approvers_may(gw, east):
    approval_id = await refused(await gw.post(BULK, json={"ids": east[:1]}, headers=auth("dave")))
    store, directory = store_of(gw), directory_of(gw)
    with pytest.raises(ApprovalError) as own:
        await store.decide(approval_id, approve=True, actor="dave", note=None, directory=directory)
    assert own.value.reason == "own-request"
    for actor in ("alice", "frank", "heidi", "nobody"):  # a rep, support, an analyst, not in the directory
        with pytest.raises(ApprovalError) as exc:
            await store.decide(approval_id, approve=True, actor=actor, note=None, directory=directory)
        assert exc.value.reason == "not-an-approver"
    await refused(await gw.post(BULK, json={"ids": east[:1]}, headers=auth("dave")))  # still pending


async def test_a_rejected_approval_never_passes(gw, east, clock):
    ids = east[:1]
    approval_id = await refused(await gw.post(BULK, json={"ids": ids}, headers=auth("dave")))
    rejected = await store_of(gw).decide(
        approval_id, approve=False, actor="erin", note="not without a ticket", directory=directory_of(gw)
    )
    assert rejected.status == "rejected" and rejected.note == "not without a ticket"
    with pytest.raises(ApprovalError) as exc:  # a decision is final
        await store_of(gw).decide(approval_id, approve=True, actor="grace", note=None, directory=directory_of(gw))
    assert exc.value.reason == "approval-rejected"
    assert (
        await refused(await gw.post(BULK, json={"ids": ids}, headers=auth("dave")), "approval-rejected") == approval_id
    )
    clock.set(clock.now + timedelta(hours=1, seconds=1))  # the rejection's validity is over
    fresh = await refused(await gw.post(BULK, json={"ids": ids}, headers=auth("dave")))
    assert fresh != approval_id  # a new request for approval, never the rejected one


async def test_an_expired_approval_never_passes(gw, east, clock):
    ids = east[:1]
    approval_id = await refused(await gw.post(BULK, json={"ids": ids}, headers=auth("dave")))
    await store_of(gw).decide(approval_id, approve=True, actor="erin", note=None, directory=directory_of(gw))
    clock.set(clock.now + timedelta(minutes=61))
    assert (
        await refused(await gw.post(BULK, json={"ids": ids}, headers=auth("dave")), "approval-expired") == approval_id
    )
    assert (await store_of(gw).get(approval_id)).status == "expired"
    fresh = await refused(await gw.post(BULK, json={"ids": ids}, headers=auth("dave")))
    assert fresh != approval_id


async def test_a_pending_request_lapses_and_can_no_longer_be_approved(gw, east, clock):
    approval_id = await refused(await gw.post(BULK, json={"ids": east[:1]}, headers=auth("dave")))
    clock.set(clock.now + timedelta(hours=2))
    with pytest.raises(ApprovalError) as exc:
        await store_of(gw).decide(approval_id, approve=True, actor="erin", note=None, directory=directory_of(gw))
    assert exc.value.reason == "approval-expired"
    assert (
        await refused(await gw.post(BULK, json={"ids": east[:1]}, headers=auth("dave")), "approval-expired")
        == approval_id
    )


async def test_a_reps_edit_is_approved_by_their_manager_only(gw):
    listing = await gw.get("/api/customers", headers=auth("alice"))
    own = (await listing.json())["data"][0]["id"]
    target = f"/api/customers/{own}"
    resp = await gw.patch(target, json={"notes": "called back"}, headers=auth("alice"))
    approval_id = await refused(resp)
    store, directory = store_of(gw), directory_of(gw)
    for actor in ("erin", "bob", "grace"):  # another team's manager, a peer, an admin: not alice's manager
        with pytest.raises(ApprovalError) as exc:
            await store.decide(approval_id, approve=True, actor=actor, note=None, directory=directory)
        assert exc.value.reason == "not-an-approver"
    await store.decide(approval_id, approve=True, actor="dave", note="ok", directory=directory)
    resp = await gw.patch(target, json={"notes": "called back"}, headers=auth("alice"))
    assert resp.status == 200, await resp.text()
    again = await refused(await gw.patch(target, json={"notes": "called back"}, headers=auth("alice")))
    assert again != approval_id  # passed once: the identical request needs a new approval
    # a manager's own edit is not held (the rule's when: not a sales_manager)
    resp = await gw.patch(f"/api/customers/{own}", json={"notes": "checked"}, headers=auth("dave"))
    assert resp.status == 200, await resp.text()


async def test_two_replicas_use_one_approval_exactly_once(
    aiohttp_client, crm, approval_rules, redis_url, tmp_path, clock
):
    """Two gateways (their own journals and audit logs, one Redis) get the approved request at once."""
    clients = []
    for name in ("a", "b"):
        base = tmp_path / name
        base.mkdir()
        settings = gateway_settings(str(crm.make_url("")).rstrip("/"), base, approval_rules, redis_url=redis_url)
        store, errors = RuleStore.open(approval_rules)
        assert store is not None, errors
        clients.append(await aiohttp_client(create_app(settings, store, clock=clock)))
    a, b = clients
    listing = await a.get("/api/customers", headers=auth("alice"))
    target = f"/api/customers/{(await listing.json())['data'][0]['id']}"
    edit = {"notes": "raced"}
    approval_id = await refused(await a.patch(target, json=edit, headers=auth("alice")))
    assert await refused(await b.patch(target, json=edit, headers=auth("alice"))) == approval_id  # shared
    await store_of(b).decide(approval_id, approve=True, actor="dave", note=None, directory=directory_of(b))
    answers = await asyncio.gather(*(c.patch(target, json=edit, headers=auth("alice")) for c in (a, b, a, b)))
    assert sorted(r.status for r in answers) == [200, 403, 403, 403]
    fresh = {(await r.json())["approval_id"] for r in answers if r.status == 403}
    assert len(fresh) == 1 and approval_id not in fresh  # the losers share one new pending approval


async def test_without_redis_the_journal_keeps_approvals_across_a_restart(make_gateway, crm, approval_rules, east):
    gw1 = await make_gateway(crm, rules=approval_rules)
    approval_id = await refused(await gw1.post(BULK, json={"ids": east[:1]}, headers=auth("dave")))
    await store_of(gw1).decide(approval_id, approve=True, actor="erin", note=None, directory=directory_of(gw1))
    await gw1.close()
    gw2 = await make_gateway(crm, rules=approval_rules)  # same data directory: same journal
    resp = await gw2.post(BULK, json={"ids": east[:1]}, headers=auth("dave"))
    assert resp.status == 200, await resp.text()
    assert (await store_of(gw2).get(approval_id)).status == "consumed"


def test_explain_names_the_approval_and_rules_check_refuses_bad_approvals(approval_rules, tmp_path):
    import shutil

    from gateway.explain import decision_dict, explain, parse_time
    from gateway.ruleset import load_ruleset

    ruleset, errors = load_ruleset(approval_rules)
    assert ruleset is not None, errors
    at = parse_time("2026-03-03T10:00:00+01:00")
    bulk = explain(
        ruleset,
        user="dave",
        method="POST",
        path=BULK,
        at=at,
        ip="10.1.2.3",
        body=b'{"ids": [1]}',
        content_type="application/json",
    )
    assert decision_dict(bulk.decision, bulk.ctx, ruleset)["approval"] == {
        "rule": "bulk-delete-needs-second-manager",
        "roles": ["sales_manager"],
        "manager": True,
        "valid_for": 3600,
    }
    single = explain(ruleset, user="dave", method="DELETE", path="/api/customers/1", at=at, ip="10.1.2.3")
    assert "approval" not in decision_dict(single.decision, single.ctx, ruleset)  # when: POST only

    bad = tmp_path / "bad"
    shutil.copytree(approval_rules, bad)
    (bad / "policies" / "91-bad.yaml").write_text(
        "format: crmgw.rules/v1\n"
        "rules:\n"
        "  - id: bad-approval\n"
        "    title: Broken approvals\n"
        "    match: {operations: [deals.delete]}\n"
        "    allow: {role: {in: [sales_manager]}}\n"
        "    approval: {approvers: {roles: [nobody]}, valid_for: 3 weeks, when: {colour: blue}}\n"
        "  - id: deny-with-approval\n"
        "    title: A deny asks for nothing\n"
        "    match: {operations: [deals.delete]}\n"
        "    deny: {role: {in: [support_agent]}}\n"
        "    approval: {approvers: manager}\n"
    )
    ruleset, errors = load_ruleset(bad)
    assert ruleset is None
    text = "\n".join(str(e) for e in errors)
    for expected in (
        "unknown role 'nobody'",
        "valid_for '3 weeks'",
        "unknown criterion 'colour'",
        "'approval' belongs to allow rules",
    ):
        assert expected in text, text
    assert all("91-bad.yaml" in str(e) for e in errors)
