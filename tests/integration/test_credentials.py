"""Legacy logins: the CRM's own credential is forwarded unchanged; otherwise the gateway's is injected."""

from __future__ import annotations

from democrm.app import REQUESTS_SEEN
from gateway.identity.devkeys import mint_crm_token
from tests.integration.conftest import CRM_TOKEN, auth


def last_seen(crm):
    seen = crm.app[REQUESTS_SEEN][-1]
    return {k.lower(): v for k, v in seen.headers.items()}


async def test_gateway_token_is_replaced_by_the_configured_upstream_credential(gw, crm):
    resp = await gw.get("/api/customers?page_size=5", headers=auth("dave"))
    assert resp.status == 200
    headers = last_seen(crm)
    assert headers["authorization"] == f"Bearer {CRM_TOKEN}"
    assert headers["x-crm-user"] == "dave" and "sales_manager" in headers["x-crm-roles"]
    assert headers["x-forwarded-for"] == "127.0.0.1" and headers["x-request-id"] == resp.headers["X-Request-Id"]


async def test_crm_personal_access_token_is_forwarded_unchanged(gw, crm):
    resp = await gw.get("/api/customers?page_size=5", headers={"Authorization": "Bearer crmpat-dave"})
    assert resp.status == 200
    assert last_seen(crm)["authorization"] == "Bearer crmpat-dave"
    assert {r["team"] for r in (await resp.json())["data"]} <= {"east"}


async def test_crm_issued_jwt_is_recognised_and_forwarded(gw, crm):
    token = mint_crm_token("alice")
    resp = await gw.get("/api/customers?page_size=50", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    assert last_seen(crm)["authorization"] == f"Bearer {token}"
    assert {r["owner_id"] for r in (await resp.json())["data"]} <= {"alice"}


async def test_service_account_api_key(gw):
    resp = await gw.get(
        "/api/customers/export.json", headers={"X-API-Key": "demo-reporting-key", "X-Forwarded-For": "10.20.1.5"}
    )
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["customers"]) == 300


async def test_wrong_api_key_is_401(gw):
    resp = await gw.get("/api/customers", headers={"X-API-Key": "guess"})
    assert resp.status == 401
    assert (await resp.json())["reason"] == "api-key-invalid"


async def test_expired_token_is_401_token_expired(gw):
    from gateway.identity.devkeys import mint_token

    resp = await gw.get("/api/customers", headers={"Authorization": f"Bearer {mint_token('dave', ttl_seconds=-120)}"})
    assert resp.status == 401
    assert (await resp.json())["reason"] == "token-expired"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
