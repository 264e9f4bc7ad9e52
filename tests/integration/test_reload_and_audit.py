"""Acceptance 10 and the audit log: hot reload under a running gateway, one audit line per decision."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.integration.conftest import auth


async def wait_for(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.slow
async def test_rule_edit_changes_decisions_within_seconds(make_gateway, crm, rules_copy):
    gw = await make_gateway(crm, rules=rules_copy)
    assert (await gw.get("/api/customers/1", headers=auth("frank"))).status == 200
    # Off-board frank by editing the directory under the running gateway.
    users = rules_copy / "users.yaml"
    text = users.read_text()
    start = text.index("  frank:")
    block_end = text.index("status: active", start)
    users.write_text(text[:block_end] + "status: offboarded" + text[block_end + len("status: active") :])

    async def refused():
        return (await gw.get("/api/customers/1", headers=auth("frank"))).status == 403

    assert await wait_for(refused), "the edit did not take effect"


@pytest.mark.slow
async def test_broken_edit_keeps_last_good_rules_and_reports_file_line(make_gateway, crm, rules_copy):
    gw = await make_gateway(crm, rules=rules_copy)
    revision = (await (await gw.get("/_gw/health")).json())["rules"]["revision"]
    policy = sorted((rules_copy / "policies").glob("*.yaml"))[0]
    lines = policy.read_text().splitlines()
    lines.insert(3, "  bogus_key: [unclosed")
    policy.write_text("\n".join(lines) + "\n")

    async def reported():
        health = await (await gw.get("/_gw/health")).json()
        return bool(health["rules"]["last_reload_error"])

    assert await wait_for(reported)
    health = await (await gw.get("/_gw/health")).json()
    assert health["rules"]["revision"] == revision
    assert health["status"] == "degraded"
    first = health["rules"]["last_reload_error"][0]
    assert first.startswith(f"rules/policies/{policy.name}:")
    assert int(first.split(":")[1]) >= 4
    # decisions still come from the last good rules
    assert (await gw.get("/api/customers/1", headers=auth("frank"))).status == 200


async def test_every_decision_writes_one_audit_line(gw, tmp_path):
    await gw.get("/api/customers?page_size=10", headers=auth("alice"))
    await gw.get("/api/customers/export.csv", headers=auth("carol"))
    await gw.get("/api/customers")
    lines = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
    assert [x["effect"] for x in lines] == ["allow", "deny", "deny"]
    allow = lines[0]
    assert allow["user"] == "alice" and allow["operation"] == "customers.list"
    assert allow["scope"] == "own" and allow["records_seen"] == 10
    assert allow["records_returned"] == len(allow["record_ids"]) <= 10
    assert allow["rules"] and allow["labels"]["revision"]
    assert (lines[1]["reason"], lines[1]["rules"]) == ("default-deny", [])  # no rule is for a rep's export
    assert lines[2]["reason"] == "unauthenticated"
    for line in lines:
        assert line["request_id"] and line["latency_ms"] >= 0 and line["status"]


async def test_unwritable_audit_log_refuses_requests_and_says_so(gw, tmp_path):
    from gateway.app import GATEWAY

    gateway = gw.server.app[GATEWAY]
    gateway.audit.close()
    gateway.audit.path = tmp_path / "no-such-dir" / "x" / "audit.log"
    (tmp_path / "no-such-dir").write_text("a file where a folder should be")
    resp = await gw.get("/api/customers?page_size=5", headers=auth("dave"))
    # the line for this request could not be written: it is counted and the next request is refused
    assert gateway.audit.dropped >= 1
    resp = await gw.get("/api/customers?page_size=5", headers=auth("dave"))
    assert resp.status == 503
    assert (await resp.json())["reason"] == "audit-unavailable"
    health = await (await gw.get("/_gw/health")).json()
    assert "audit-unwritable" in health["degraded"]


async def test_detailed_health_is_for_admin_networks_only(make_gateway, crm):
    gw = await make_gateway(crm, admin={"allow_networks": ["10.9.9.0/24"]})
    resp = await gw.get("/_gw/health")
    assert resp.status == 403
    resp = await gw.get("/readyz")
    assert resp.status == 200 and (await resp.json()) == {"status": "ok", "ready": True}
