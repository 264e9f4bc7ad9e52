"""Identity end to end: the real gateway in front of democrm, with a real OIDC provider on loopback.

Users named by any directory attribute, required claims per credential kind, a rule on the
authentication method, and SSO keys found by OIDC discovery that rotate and fail closed.
"""

from __future__ import annotations

import asyncio
import time
import warnings

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from democrm.app import REQUESTS_SEEN
from gateway.identity.devkeys import (
    DEMOCRM_ISSUER,
    DEMOCRM_JWT_SECRET,
    DEV_AUDIENCE,
    DEV_IDENTITY_CONFIG,
    DEV_ISSUER,
    DEV_JWT_SECRET,
    mint_crm_token,
)
from tests.identity.idp import IdentityProvider
from tests.integration.conftest import audit_lines, auth

CUSTOMERS = "/api/customers?page_size=50"


def crm_issued(**claims) -> dict[str, str]:
    """A JWT as the CRM issues it (democrm's own login checks iss, sub and exp)."""
    now = int(time.time())
    with warnings.catch_warnings():  # the demo CRM's short secret
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        token = jwt.encode({"iss": DEMOCRM_ISSUER, "iat": now, "exp": now + 600, **claims}, DEMOCRM_JWT_SECRET)
    return {"Authorization": f"Bearer {token}"}


def owners(body: dict) -> set[str]:
    return {r["owner_id"] for r in body["data"]}


# --- 1 + 2: which user, and which tenant ---------------------------------------------------


@pytest.fixture
def rules_with_crm_ids(rules_copy):
    """The shipped users, with the CRM's numeric user ids as a custom attribute (1002 twice)."""
    path = rules_copy / "users.yaml"
    users = yaml.safe_load(path.read_text())
    for user, crm_id in {"alice": "1001", "bob": "1002", "carol": "1002", "dave": "1004"}.items():
        users["users"][user].setdefault("attributes", {})["crm_user_id"] = crm_id
    path.write_text(yaml.safe_dump(users, sort_keys=False))
    return rules_copy


@pytest.fixture
async def tenant_gw(make_gateway, crm, rules_with_crm_ids):
    identity = DEV_IDENTITY_CONFIG.model_dump()
    identity["jwt"].update(user_claim="email", user_attribute="email")
    identity["crm_credential"]["jwt"].update(
        user_claim="user_id", user_attribute="crm_user_id", require={"org_id": ["acme", "acme-eu"]}
    )
    return await make_gateway(crm, rules=rules_with_crm_ids, identity=identity)


async def test_crm_jwt_names_its_user_by_the_crms_user_id(tenant_gw, crm):
    headers = crm_issued(sub="alice", user_id=1001, org_id="acme")
    resp = await tenant_gw.get(CUSTOMERS, headers=headers)
    assert resp.status == 200, await resp.text()
    assert owners(await resp.json()) == {"alice"}  # alice's own scope
    seen = crm.app[REQUESTS_SEEN][-1].headers
    assert seen["Authorization"] == headers["Authorization"] and seen["X-CRM-User"] == "alice"


@pytest.mark.parametrize(
    "claims, reason",
    [
        ({"sub": "alice", "user_id": 1001, "org_id": "globex"}, "claim-mismatch"),  # another tenant
        ({"sub": "alice", "user_id": 1001}, "claim-mismatch"),  # no tenant
        ({"sub": "bob", "user_id": 1002, "org_id": "acme"}, "user-ambiguous"),  # bob and carol
        ({"sub": "alice", "user_id": 4242, "org_id": "acme"}, "user-unknown"),
        ({"sub": "alice", "org_id": "acme"}, "token-invalid"),  # no user_id: sub is not the claim
    ],
)
async def test_crm_jwt_refused_before_the_crm_sees_it(tenant_gw, crm, claims, reason):
    before = len(crm.app[REQUESTS_SEEN])
    resp = await tenant_gw.get(CUSTOMERS, headers=crm_issued(**claims))
    assert resp.status == 401
    assert (await resp.json())["reason"] == reason
    assert len(crm.app[REQUESTS_SEEN]) == before


async def test_gateway_jwt_without_sub_names_its_user_by_email(tenant_gw):
    now = int(time.time())
    claims = {"email": "Dave@Example.com", "iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "iat": now, "exp": now + 600}
    resp = await tenant_gw.get(CUSTOMERS, headers={"Authorization": f"Bearer {jwt.encode(claims, DEV_JWT_SECRET)}"})
    assert resp.status == 200, await resp.text()
    assert {r["team"] for r in (await resp.json())["data"]} == {"east"}  # dave manages team east


# --- 3: a rule on the authentication method ----------------------------------------------

CRM_LOGIN_POLICY = """\
format: crmgw.rules/v1
rules:
  - id: sales-all-customers-with-crm-login
    title: Sales reps who log in with the CRM's own credential list every customer
    description: The CRM checks those credentials itself as well; gateway tokens keep the own scope.
    match: {operations: [customers.list]}
    allow:
      and:
        - role: {in: [sales_rep]}
        - auth_method: {in: [crm_jwt, crm_token]}
    data_scope: {sales_rep: all}
"""


@pytest.fixture
async def crm_login_gw(make_gateway, crm, rules_copy):
    (rules_copy / "policies" / "50-crm-login.yaml").write_text(CRM_LOGIN_POLICY)
    return await make_gateway(crm, rules=rules_copy)


@pytest.mark.parametrize(
    "credential, method, everyone",
    [
        ("gateway-jwt", "jwt", False),
        ("crm-token", "crm_token", True),
        ("crm-jwt", "crm_jwt", True),
    ],
)
async def test_scope_all_only_with_the_crms_own_credential(crm_login_gw, tmp_path, credential, method, everyone):
    headers = {
        "gateway-jwt": auth("alice"),
        "crm-token": {"Authorization": "Bearer crmpat-alice"},
        "crm-jwt": {"Authorization": f"Bearer {mint_crm_token('alice')}"},
    }[credential]
    resp = await crm_login_gw.get(CUSTOMERS, headers=headers)
    assert resp.status == 200, await resp.text()
    seen = owners(await resp.json())
    assert (len(seen) > 1) is everyone and "alice" in seen
    assert seen == {"alice"} or everyone
    line = audit_lines(tmp_path)[-1]
    assert (line["auth"], line["scope"]) == (method, "all" if everyone else "own")
    assert ("sales-all-customers-with-crm-login" in line["rules"]) is everyone
    assert ("auth-method-ok" in line["reasons"]) is everyone


# --- 4: SSO keys by OIDC discovery, rotated, provider down -----------------------------------


@pytest.fixture(scope="module")
def sso_keys():
    return {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "k2")}


@pytest.fixture
async def idp(aiohttp_server, sso_keys):
    provider = IdentityProvider({"k1": sso_keys["k1"]})
    provider.server = await aiohttp_server(provider.app())
    provider.issuer = str(provider.server.make_url("")).rstrip("/")
    return provider


TTL, MIN_INTERVAL = 1.0, 0.2


@pytest.fixture
async def sso_gw(make_gateway, crm, idp):
    identity = DEV_IDENTITY_CONFIG.model_dump()
    identity["jwt"] = {
        "algorithms": ["RS256"],
        "issuer": idp.issuer,
        "audience": "crm",
        "oidc_discovery": True,
        "jwks_cache": {"ttl_seconds": TTL, "refresh_min_interval_seconds": MIN_INTERVAL, "fetch_timeout_seconds": 2},
    }
    return await make_gateway(crm, identity=identity)


async def health(gw) -> dict:
    return await (await gw.get("/_gw/health")).json()


@pytest.mark.slow  # over a second
async def test_sso_keys_rotate_and_fail_closed(sso_gw, idp, sso_keys):
    old = idp.token("k1", "alice")
    resp = await sso_gw.get(CUSTOMERS, headers=old)
    assert resp.status == 200, await resp.text()
    assert owners(await resp.json()) == {"alice"}
    assert idp.hits == {"discovery": 1, "jwks": 1}

    idp.keys = {"k2": sso_keys["k2"]}  # the provider rotates its signing key
    await asyncio.sleep(MIN_INTERVAL)
    resp = await sso_gw.get(CUSTOMERS, headers=idp.token("k2", "dave"))
    assert resp.status == 200, await resp.text()
    for token in (old, idp.token("k1", "bob", key=sso_keys["k1"])):  # cached or new: k1 is gone
        resp = await sso_gw.get(CUSTOMERS, headers=token)
        assert (resp.status, (await resp.json())["reason"]) == (401, "token-invalid")
    report = await health(sso_gw)
    assert report["identity"]["key_sets"][0]["kids"] == ["k2"]
    assert "identity-keys-unavailable" not in report["degraded"]

    await idp.server.close()  # the provider goes away; the keys run out
    await asyncio.sleep(TTL)
    resp = await sso_gw.get(CUSTOMERS, headers=idp.token("k2", "dave"))
    assert (resp.status, (await resp.json())["reason"]) == (401, "jwks-unavailable")
    report = await health(sso_gw)
    assert report["status"] == "degraded" and "identity-keys-unavailable" in report["degraded"]
    assert report["identity"]["key_sets"][0]["last_error"]
    # the other credentials do not depend on the provider
    assert (await sso_gw.get(CUSTOMERS, headers={"Authorization": "Bearer crmpat-alice"})).status == 200


async def test_health_without_fetched_keys_has_no_identity_section(gw):
    assert "identity" not in await health(gw)


@pytest.mark.parametrize(("auth_method", "scope"), [(None, "own"), ("jwt", "own"), ("crm_token", "all")])
def test_explain_describes_how_the_caller_authenticated_like_the_live_gateway(rules_copy, auth_method, scope):
    from datetime import datetime

    from gateway.explain import explain
    from gateway.rulestore import RuleStore
    from tests.conftest import PARIS

    (rules_copy / "policies" / "50-crm-login.yaml").write_text(CRM_LOGIN_POLICY)
    store, errors = RuleStore.open(rules_copy)
    assert store is not None, errors
    told = explain(
        store.current,
        user="alice",
        method="GET",
        path=CUSTOMERS,
        ip="10.1.2.3",
        at=datetime(2026, 3, 3, 10, 0, tzinfo=PARIS),
        **({"auth_method": auth_method} if auth_method else {}),
    )
    assert (told.decision.effect, told.decision.obligations.scope) == ("allow", scope)
