"""The CRM's own login: its JWTs and personal access tokens, forwarded unchanged.

Through BearerAuthenticator with no gateway JWT keys: the way gateway.identity.stage composes it."""

from __future__ import annotations

import time

import pytest

from gateway.errors import Unauthenticated
from gateway.identity.config import JwtKeys
from gateway.identity.crm_credential import CrmCredentialAuthenticator
from gateway.identity.devkeys import DEMOCRM_ISSUER, DEMOCRM_JWT_SECRET, mint_crm_token, mint_token
from gateway.identity.jwt_bearer import build_jwt
from gateway.identity.stage import BearerAuthenticator

from .conftest import bearer


@pytest.fixture
def crm(tmp_path) -> BearerAuthenticator:
    cfg = JwtKeys(algorithms=["HS256"], secret=DEMOCRM_JWT_SECRET, issuer=DEMOCRM_ISSUER)
    jwt_auth, problems = build_jwt(cfg, tmp_path, "crm", method="crm_jwt", forward_credential=True)
    assert problems == []
    return BearerAuthenticator(None, CrmCredentialAuthenticator(jwt_auth, personal_tokens=True))


def reason(auth, token, directory) -> str:
    with pytest.raises(Unauthenticated) as info:
        auth.authenticate(bearer(token), False, directory)
    return info.value.reason


def test_crm_jwt_is_accepted_and_forwarded(crm, directory):
    identity = crm.authenticate(bearer(mint_crm_token("bob")), False, directory)
    assert identity.user.id == "bob"
    assert (identity.method, identity.forward_credential) == ("crm_jwt", True)


def test_crm_personal_access_token_is_accepted_and_forwarded(crm, directory):
    identity = crm.authenticate(bearer("crmpat-carol"), False, directory)
    assert identity.user.id == "carol"
    assert (identity.method, identity.forward_credential) == ("crm_token", True)


@pytest.mark.parametrize("token", ["crmpat-mallory", "demo-crm-service-token", "crmpat-alicex", "CRMPAT-alice"])
def test_unknown_personal_token_is_invalid(crm, directory, token):
    assert reason(crm, token, directory) == "token-invalid"


def test_gateway_jwt_does_not_verify_as_crm_jwt(crm, directory):
    assert reason(crm, mint_token("alice"), directory) == "token-invalid"


def test_expired_crm_jwt(crm, directory):
    token = mint_crm_token("bob", ttl_seconds=60, now=time.time() - 3600)
    assert reason(crm, token, directory) == "token-expired"


def test_personal_tokens_can_be_disabled(tmp_path, directory):
    auth = BearerAuthenticator(None, CrmCredentialAuthenticator(None, personal_tokens=False))
    assert reason(auth, "crmpat-carol", directory) == "token-invalid"  # not accepted
    assert reason(auth, mint_crm_token("bob"), directory) == "token-invalid"
