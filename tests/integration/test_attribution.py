"""Attribution upstream (issue 10, point 6): the CRM's own records name the real user.

The real gateway in front of the classic demo CRM. What reached the CRM is read from its request log
(REQUESTS_SEEN, raw headers: every copy of a header, in order), what it recorded from its store.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from democrm.app import REQUESTS_SEEN, STORE
from gateway.app import GATEWAY
from tests.integration.conftest import CRM_TOKEN, auth

ACTING = [{"header": "X-Acting-User", "value": "email"}, {"header": "X-Acting-Id", "value": "id"}]
ENV_CREDS = {"from_env": "CRM_TOKEN_{USER}"}
# The gateway's identity header renamed: democrm reads X-CRM-User (with the service token) as the
# acting user, so without it a write can only be attributed through the personal credential.
NO_CRM_USER = {"user": "X-Gateway-User", "roles": None}


def raw(crm, index: int = -1) -> list[tuple[str, str]]:
    return [(name.lower(), value) for name, value in crm.app[REQUESTS_SEEN][index].raw_headers]


def seen(crm, index: int = -1) -> dict[str, str]:
    return {k.lower(): v for k, v in crm.app[REQUESTS_SEEN][index].headers.items()}


def audit_line(tmp_path, request_id: str) -> dict:
    lines = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
    return next(line for line in lines if line["request_id"] == request_id)


def secrets_file(tmp_path, text: str, mode: int = 0o600):
    path = tmp_path / "crm-tokens.yaml"
    path.write_text(text)
    path.chmod(mode)
    return path


async def test_on_behalf_of_headers_reach_the_crm_and_client_copies_never_do(make_gateway, crm):
    gw = await make_gateway(crm, upstream={"on_behalf_of": ACTING})
    spoof = {
        "X-Acting-User": "grace@example.com",
        "X-Acting-Id": "grace",
        "X_Acting_User": "grace@example.com",
        "Connection": "X-Acting-User",
    }
    resp = await gw.get("/api/customers?page_size=5", headers={**auth("carol"), **spoof})
    assert resp.status == 200, await resp.text()
    headers = raw(crm)
    assert [v for n, v in headers if n in ("x-acting-user", "x_acting_user")] == ["carol@example.com"]
    assert [v for n, v in headers if n == "x-acting-id"] == ["carol"]
    assert "grace" not in repr(headers)


@pytest.mark.parametrize(("missing", "read_status"), [("refuse", 403), ("omit_on_reads", 200)])
async def test_a_user_without_the_attribute_is_refused_before_the_crm_sees_a_write(
    make_gateway, crm, tmp_path, missing, read_status
):
    # cost_center is a custom directory attribute: alice has one, carol has none.
    gw = await make_gateway(
        crm, upstream={"on_behalf_of": [{"header": "X-Cost-Center", "value": "cost_center", "missing": missing}]}
    )
    write = await gw.post("/api/customers", json={"name": "Unattributed Co"}, headers=auth("carol"))
    assert write.status == 403
    body = await write.json()
    assert (body["error"], body["reason"]) == ("forbidden", "attribution-missing") and "cost_center" not in repr(body)
    assert len(crm.app[REQUESTS_SEEN]) == 0 and not [
        c for c in crm.app[STORE].all("customers") if c["name"] == "Unattributed Co"
    ]
    line = audit_line(tmp_path, body["request_id"])
    assert (line["effect"], line["reason"], line["upstream_credential"]) == ("deny", "attribution-missing", None)

    read = await gw.get("/api/customers?page_size=5", headers=auth("carol"))
    assert read.status == read_status
    if read_status == 200:
        assert "x-cost-center" not in seen(crm)
    ok = await gw.post("/api/customers", json={"name": "Attributed Co"}, headers=auth("alice"))
    assert ok.status == 201, await ok.text()
    assert seen(crm)["x-cost-center"] == "4100"


async def test_a_personal_credential_makes_the_crm_record_the_real_user(make_gateway, crm, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_TOKEN_CAROL", "crmpat-carol")
    gw = await make_gateway(crm, upstream={"user_credentials": ENV_CREDS, "identity_headers": NO_CRM_USER})
    resp = await gw.post("/api/customers", json={"name": "Carol's Co"}, headers=auth("carol"))
    assert resp.status == 201, await resp.text()
    created = crm.app[STORE].get("customers", (await resp.json())["id"])
    assert (created["owner_id"], created["team"]) == ("carol", "west")
    headers = seen(crm)
    assert headers["authorization"] == "Bearer crmpat-carol" and "x-crm-user" not in headers
    assert [n for n, _ in raw(crm)].count("authorization") == 1  # the service credential is not sent too
    assert audit_line(tmp_path, resp.headers["X-Request-Id"])["upstream_credential"] == "personal"

    # The control: without a personal credential the service token goes up, and the CRM cannot
    # tell who acted (democrm refuses an owner-less create it cannot attribute).
    resp = await gw.post("/api/customers", json={"name": "Dave's Co"}, headers=auth("dave"))
    assert resp.status == 400 and seen(crm)["authorization"] == f"Bearer {CRM_TOKEN}"
    assert audit_line(tmp_path, resp.headers["X-Request-Id"])["upstream_credential"] == "service"


async def test_fallback_refuse_answers_403_for_users_without_a_personal_credential(
    make_gateway, crm, tmp_path, monkeypatch
):
    monkeypatch.setenv("CRM_TOKEN_CAROL", "crmpat-carol")
    gw = await make_gateway(crm, upstream={"user_credentials": {**ENV_CREDS, "fallback": "refuse"}})
    resp = await gw.get("/api/customers?page_size=5", headers=auth("dave"))
    assert resp.status == 403 and (await resp.json())["reason"] == "upstream-credential-missing"
    assert len(crm.app[REQUESTS_SEEN]) == 0
    line = audit_line(tmp_path, resp.headers["X-Request-Id"])
    assert (line["reason"], line["upstream_credential"]) == ("upstream-credential-missing", None)
    resp = await gw.get("/api/customers?page_size=5", headers=auth("carol"))
    assert resp.status == 200 and seen(crm)["authorization"] == "Bearer crmpat-carol"


async def test_the_callers_own_crm_login_is_kept_and_audited_as_such(make_gateway, crm, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_TOKEN_DAVE", "crmpat-carol")  # never used: dave brings his own login
    gw = await make_gateway(crm, upstream={"user_credentials": ENV_CREDS, "on_behalf_of": ACTING})
    resp = await gw.get("/api/customers?page_size=5", headers={"Authorization": "Bearer crmpat-dave"})
    assert resp.status == 200
    assert (seen(crm)["authorization"], seen(crm)["x-acting-user"]) == ("Bearer crmpat-dave", "dave@example.com")
    assert audit_line(tmp_path, resp.headers["X-Request-Id"])["upstream_credential"] == "caller"


async def test_the_secrets_file_is_reread_when_it_changes_under_a_running_gateway(make_gateway, crm, tmp_path):
    path = secrets_file(tmp_path, "carol: crmpat-carol\n")
    gw = await make_gateway(crm, upstream={"user_credentials": {"from_file": "crm-tokens.yaml"}})
    assert (await gw.get("/api/customers?page_size=1", headers=auth("dave"))).status == 200
    assert seen(crm)["authorization"] == f"Bearer {CRM_TOKEN}"
    path.write_text("carol: crmpat-carol\ndave: crmpat-dave\n")
    await asyncio.sleep(0.3)  # conftest's reload_interval is 0.2 s
    assert (await gw.get("/api/customers?page_size=1", headers=auth("dave"))).status == 200
    assert seen(crm)["authorization"] == "Bearer crmpat-dave"


async def test_secrets_never_reach_the_logs_or_the_audit_line(make_gateway, crm, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CRM_TOKEN_CAROL", "crmpat-carol")
    path = secrets_file(tmp_path, "erin: crmpat-erin\n")
    gw = await make_gateway(
        crm, upstream={"user_credentials": {**ENV_CREDS, "from_file": "crm-tokens.yaml", "fallback": "refuse"}}
    )
    assert (await gw.post("/api/customers", json={"name": "C"}, headers=auth("carol"))).status == 201
    assert (await gw.get("/api/customers?page_size=1", headers=auth("erin"))).status == 200
    assert (await gw.get("/api/customers?page_size=1", headers=auth("dave"))).status == 403
    path.write_text("erin: crmpat-erin\nfrank: crmpat-frank\n")
    path.chmod(0o644)  # refused on reload: logged, the last good version kept
    await asyncio.sleep(0.3)
    assert (await gw.get("/api/customers?page_size=1", headers=auth("frank"))).status == 403
    assert "not reloaded, keeping the last good version" in caplog.text
    attribution = gw.server.app[GATEWAY].attribution
    for text in (caplog.text, (tmp_path / "audit.log").read_text(), repr(attribution.secrets)):
        assert "crmpat-" not in text
