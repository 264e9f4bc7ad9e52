"""``crmgw access request|list|approve|reject|revoke`` and ``crmgw explain --config`` as subprocesses,
next to a running gateway sharing the settings file (journal, Redis, audit log): the CLI asks,
decides and revokes, the gateway enforces at once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from gateway.app import GATEWAY, create_app
from gateway.identity.devkeys import DEV_IDENTITY_CONFIG
from gateway.rulestore import RuleStore
from gateway.settings import load_settings
from tests.conftest import REPO, RULES
from tests.integration.conftest import CRM_TOKEN, auth

pytestmark = pytest.mark.slow

EXPORT = "/api/customers/export.csv"


async def crmgw(*argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CRMGW_CONFIG"}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway.cli", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
async def setup(aiohttp_client, crm, redis_url, tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(
        json.dumps(
            {
                "upstream": {"url": str(crm.make_url("")).rstrip("/"), "credential": {"value": f"Bearer {CRM_TOKEN}"}},
                "rules_dir": str(RULES),
                "redis_url": redis_url,
                "audit": {"path": "var/audit.log"},
                "identity": DEV_IDENTITY_CONFIG.model_dump(mode="json"),
                "trusted_proxies": ["127.0.0.1/32"],
            }
        )
    )
    settings, errors = load_settings(config)
    assert settings is not None, errors
    store, errors = RuleStore.open(RULES)
    client = await aiohttp_client(create_app(settings, store))  # the wall clock, like the CLI
    return client, str(config)


async def test_request_approve_explain_and_revoke_from_the_command_line(setup):
    client, config = setup
    until = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
    asked = await crmgw(
        "access",
        "request",
        "--config",
        config,
        "--actor",
        "carol",
        "--operation",
        "customers.export",
        "--scope",
        "own",
        "--until",
        until,
        "--reason",
        "pipeline review SEC-9",
        "--json",
    )
    assert asked.returncode == 0, asked.stderr
    request_id = json.loads(asked.stdout)["id"]
    listed = await crmgw("access", "list", "--config", config, "--for", "erin", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [request_id]
    assert json.loads((await crmgw("access", "list", "--config", config, "--for", "carol", "--json")).stdout) == []

    own = await crmgw("access", "approve", request_id, "--config", config, "--actor", "carol")
    assert own.returncode == 1 and "own-request" in own.stderr
    rep = await crmgw("access", "approve", request_id, "--config", config, "--actor", "bob")
    assert rep.returncode == 1 and "not-an-approver" in rep.stderr
    done = await crmgw("access", "approve", request_id, "--config", config, "--actor", "erin", "--note", "ok")
    assert done.returncode == 0, done.stderr
    assert "approved" in done.stdout and "erin" in done.stdout

    gw = client.server.app[GATEWAY]
    await gw.access.refresh_active()  # the gateway's snapshot refreshes every second by itself
    resp = await client.get(EXPORT, headers=auth("carol"))
    assert resp.status == 200, await resp.text()

    explained = await crmgw("explain", "--config", config, "--user", "carol", "--path", EXPORT, "--json")
    assert explained.returncode == 0, explained.stderr
    decision = json.loads(explained.stdout)
    assert decision["effect"] == "allow" and decision["rules"] == [request_id] and decision["scope"] == "own"
    without = json.loads(
        (await crmgw("explain", "--rules", str(RULES), "--user", "carol", "--path", EXPORT, "--json")).stdout
    )
    assert without["effect"] == "deny"

    revoked = await crmgw("access", "revoke", request_id, "--config", config, "--actor", "erin", "--note", "done")
    assert revoked.returncode == 0, revoked.stderr
    resp = await client.get(EXPORT, headers=auth("carol"))  # at once, no refresh needed
    assert resp.status == 403
    again = await crmgw("access", "revoke", request_id, "--config", config, "--actor", "erin")
    assert again.returncode == 1 and "access-revoked" in again.stderr

    lines = [orjson.loads(x) for x in gw.audit.path.read_bytes().splitlines() if x.strip()]
    events = [(r["event"], r["actor"], r["via"]) for r in lines if r.get("kind") == "access"]
    assert events == [
        ("access.requested", "carol", "cli"),
        ("access.approved", "erin", "cli"),
        ("access.revoked", "erin", "cli"),
    ]
