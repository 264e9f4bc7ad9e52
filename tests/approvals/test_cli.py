"""``crmgw approvals list|approve|reject`` as subprocesses, next to a running gateway that shares the
settings file (its journal and Redis): the CLI decides, the gateway enforces, both audit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import orjson
import pytest

from gateway.app import GATEWAY, create_app
from gateway.identity.devkeys import DEV_IDENTITY_CONFIG
from gateway.rulestore import RuleStore
from gateway.settings import load_settings
from tests.conftest import REPO
from tests.integration.conftest import CRM_TOKEN, auth

pytestmark = pytest.mark.slow

BULK = "/api/customers/bulk-delete"


async def crmgw(*argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CRMGW_CONFIG"}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway.cli", "approvals", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
async def setup(aiohttp_client, crm, approval_rules, redis_url, tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(
        json.dumps(
            {  # JSON is YAML: the settings file both the gateway and the CLI read
                "upstream": {"url": str(crm.make_url("")).rstrip("/"), "credential": {"value": f"Bearer {CRM_TOKEN}"}},
                "rules_dir": str(approval_rules),
                "redis_url": redis_url,
                "audit": {"path": "var/audit.log"},
                "identity": DEV_IDENTITY_CONFIG.model_dump(mode="json"),
                "trusted_proxies": ["127.0.0.1/32"],
            }
        )
    )
    settings, errors = load_settings(config)
    assert settings is not None, errors
    store, errors = RuleStore.open(approval_rules)
    client = await aiohttp_client(create_app(settings, store))  # the wall clock, like the CLI
    return client, str(config)


async def ask(client, ids) -> str:
    resp = await client.post(BULK, json={"ids": ids}, headers=auth("dave"))
    body = await resp.json()
    assert resp.status == 403, body
    return body["approval_id"]


async def east(client) -> list[int]:
    resp = await client.get("/api/customers?page_size=200", headers=auth("dave"))
    return [r["id"] for r in (await resp.json())["data"]]


async def test_list_approve_and_reject_from_the_command_line(setup):
    client, config = setup
    ids = await east(client)
    first = await ask(client, ids[:1])

    listed = await crmgw("list", "--config", config, "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["id"], row["status"], row["requester"], row["method"], row["path"]) == (
        first,
        "pending",
        "dave",
        "POST",
        BULK,
    )
    plain = await crmgw("list", "--config", config)
    assert first in plain.stdout and "1 approval(s)" in plain.stderr and "and Redis" in plain.stderr
    assert [
        a["id"] for a in json.loads((await crmgw("list", "--config", config, "--for", "erin", "--json")).stdout)
    ] == [first]
    assert json.loads((await crmgw("list", "--config", config, "--for", "dave", "--json")).stdout) == []

    own = await crmgw("approve", first, "--config", config, "--actor", "dave", "--note", "mine")
    assert own.returncode == 1 and "own-request" in own.stderr
    rep = await crmgw("approve", first, "--config", config, "--actor", "alice", "--note", "why not")
    assert rep.returncode == 1 and "not-an-approver" in rep.stderr
    assert (await client.post(BULK, json={"ids": ids[:1]}, headers=auth("dave"))).status == 403  # still pending

    done = await crmgw("approve", first, "--config", config, "--actor", "erin", "--note", "ticket OPS-9")
    assert done.returncode == 0, done.stderr
    assert "approved" in done.stdout and "erin" in done.stdout
    resp = await client.post(BULK, json={"ids": ids[:1]}, headers=auth("dave"))
    assert resp.status == 200, await resp.text()
    again = await crmgw("approve", first, "--config", config, "--actor", "erin", "--note", "twice")
    assert again.returncode == 1 and "approval-consumed" in again.stderr

    second = await ask(client, ids[1:2])
    rejected = await crmgw("reject", second, "--config", config, "--actor", "erin", "--note", "no ticket", "--json")
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["status"] == "rejected"
    resp = await client.post(BULK, json={"ids": ids[1:2]}, headers=auth("dave"))
    assert resp.status == 403 and (await resp.json())["reason"] == "approval-rejected"

    audit_path = client.server.app[GATEWAY].audit.path
    lines = [orjson.loads(x) for x in audit_path.read_bytes().splitlines() if x.strip()]
    decisions = [
        (r["event"], r["approval_id"], r["actor"], r["note"], r["via"]) for r in lines if r.get("kind") == "approval"
    ]
    assert decisions == [
        ("approval.approved", first, "erin", "ticket OPS-9", "cli"),
        ("approval.rejected", second, "erin", "no ticket", "cli"),
    ]
    unknown = await crmgw("reject", "01NOSUCHAPPROVAL", "--config", config, "--actor", "erin", "--note", "x")
    assert unknown.returncode == 1 and "approval-unknown" in unknown.stderr


async def test_a_bad_settings_file_is_a_usage_error(tmp_path):
    missing = await crmgw("list", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
