"""``require:``: claims a token must carry with exact values (another tenant's token is refused)."""

from __future__ import annotations

import time

import pytest

from gateway.errors import Unauthenticated
from gateway.identity.devkeys import DEMOCRM_ISSUER, DEV_IDENTITY_CONFIG, mint_token

from .conftest import bearer, make_stage, sign_as_democrm


def crm_token(**payload) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "alice", "iss": DEMOCRM_ISSUER, "iat": now, "exp": now + 600, **payload}
    return bearer(sign_as_democrm(claims))


def stage_requiring(tmp_path, require: dict):
    """The demo identity settings, with the CRM's JWTs held to ``require``."""
    config = DEV_IDENTITY_CONFIG.model_dump()
    config["crm_credential"]["jwt"]["require"] = require
    return make_stage(config, tmp_path)


def outcome(stage, headers, directory) -> str:
    try:
        return stage.identify(headers, False, directory).user.id
    except Unauthenticated as exc:
        return exc.reason


@pytest.mark.parametrize(
    "require, payload, expected",
    [
        ({"org_id": "acme"}, {"org_id": "acme"}, "alice"),
        ({"org_id": "acme"}, {"org_id": "globex"}, "claim-mismatch"),  # another tenant
        ({"org_id": "acme"}, {}, "claim-mismatch"),  # no tenant at all
        ({"org_id": "acme"}, {"org_id": "ACME"}, "claim-mismatch"),
        ({"org_id": "acme"}, {"org_id": ["acme"]}, "claim-mismatch"),  # a list is not the value
        ({"org_id": "acme"}, {"org_id": {"id": "acme"}}, "claim-mismatch"),
        ({"org_id": ["acme", "acme-eu"]}, {"org_id": "acme-eu"}, "alice"),  # a list: any of
        ({"org_id": ["acme", "acme-eu"]}, {"org_id": "globex"}, "claim-mismatch"),
        ({"org_id": 42}, {"org_id": 42}, "alice"),
        ({"org_id": 42}, {"org_id": "42"}, "claim-mismatch"),  # types count
        ({"staff": True}, {"staff": True}, "alice"),
        ({"staff": True}, {"staff": 1}, "claim-mismatch"),  # 1 is not true
        ({"org_id": "acme", "env": "prod"}, {"org_id": "acme", "env": "test"}, "claim-mismatch"),
        ({"org_id": "acme", "env": "prod"}, {"org_id": "acme", "env": "prod"}, "alice"),
    ],
)
def test_required_claims(tmp_path, directory, require, payload, expected):
    assert outcome(stage_requiring(tmp_path, require), crm_token(**payload), directory) == expected


def test_another_tenants_crm_jwt_is_refused_not_cached(tmp_path, directory):
    stage = stage_requiring(tmp_path, {"org_id": "acme"})
    token = crm_token(org_id="globex")
    for _ in range(2):  # refused each time: a failure never reaches the claims cache
        assert outcome(stage, token, directory) == "claim-mismatch"
    # the gateway's own JWTs are held to their own section's requirements (none here)
    assert outcome(stage, bearer(mint_token("bob")), directory) == "bob"


def test_gateway_jwt_requirements(tmp_path, directory):
    config = DEV_IDENTITY_CONFIG.model_dump()
    config["jwt"]["require"] = {"tid": ["t-1", "t-2"]}
    stage = make_stage(config, tmp_path)
    assert outcome(stage, bearer(mint_token("bob")), directory) == "claim-mismatch"
    # and the CRM's tokens are not: each credential kind has its own list
    assert outcome(stage, crm_token(), directory) == "alice"
