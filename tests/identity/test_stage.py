"""IdentityStage: the order of authenticators, fallbacks, and refusing inactive users."""

from __future__ import annotations

import time

import jwt as pyjwt
import pytest
from multidict import CIMultiDict

from gateway.errors import Forbidden, Unauthenticated
from gateway.identity.devkeys import (
    DEV_AUDIENCE,
    DEV_IDENTITY_CONFIG,
    DEV_ISSUER,
    DEV_JWT_SECRET,
    mint_crm_token,
    mint_token,
)
from gateway.identity.stage import IDENTITY_HEADERS, IdentityStage

from .conftest import Clock, bearer, make_stage


@pytest.fixture
def stage() -> IdentityStage:
    return IdentityStage(DEV_IDENTITY_CONFIG, ".")


def identify(stage, headers, directory, peer_trusted=False):
    return stage.identify(headers, peer_trusted, directory)


def refusal(stage, headers, directory, peer_trusted=False, error=Unauthenticated) -> str:
    with pytest.raises(error) as info:
        stage.identify(headers, peer_trusted, directory)
    return info.value.reason


@pytest.mark.parametrize(
    "headers, peer_trusted, user, method",
    [
        (bearer(mint_token("alice")), False, "alice", "jwt"),
        (bearer(mint_crm_token("bob")), False, "bob", "crm_jwt"),
        (bearer("crmpat-carol"), False, "carol", "crm_token"),
        ({"X-API-Key": "demo-reporting-key"}, False, "svc-reporting", "api_key"),
        ({"X-Authenticated-User": "dave"}, True, "dave", "trusted_header"),
        # trusted header first, when the peer is trusted ...
        ({"X-Authenticated-User": "dave", **bearer(mint_token("alice"))}, True, "dave", "trusted_header"),
        # ... and ignored, not refused, when it is not
        ({"X-Authenticated-User": "dave", **bearer(mint_token("alice"))}, False, "alice", "jwt"),
        # API key before Bearer
        ({"X-API-Key": "demo-reporting-key", **bearer(mint_token("alice"))}, False, "svc-reporting", "api_key"),
    ],
)
def test_who_is_calling(stage, directory, headers, peer_trusted, user, method):
    identity = identify(stage, headers, directory, peer_trusted)
    assert (identity.user.id, identity.method) == (user, method)


@pytest.mark.parametrize(
    "headers, peer_trusted, reason",
    [
        ({}, False, "unauthenticated"),
        ({"X-Authenticated-User": "dave"}, False, "unauthenticated"),
        ({"Authorization": "Basic YWxpY2U6cHc="}, False, "unauthenticated"),
        ({"X-Authenticated-User": "mallory"}, True, "user-unknown"),
        ({"X-API-Key": "nope", **bearer(mint_token("alice"))}, False, "api-key-invalid"),
        (bearer("not-a-token"), False, "token-invalid"),
        (bearer(mint_token("mallory")), False, "user-unknown"),
        (bearer(mint_token("alice", secret="k" * 40)), False, "token-invalid"),
        (bearer(mint_token("alice", issuer="evil")), False, "token-issuer"),
        # expired gateway token: the gateway's reason, though the CRM verifier failed too
        (bearer(mint_token("alice", now=time.time() - 7200)), False, "token-expired"),
        # expired CRM token: the CRM key matched, so its reason is the telling one
        (bearer(mint_crm_token("bob", now=time.time() - 7200)), False, "token-expired"),
    ],
)
def test_refusals(stage, directory, headers, peer_trusted, reason):
    assert refusal(stage, headers, directory, peer_trusted) == reason


@pytest.mark.parametrize(
    "headers, peer_trusted",
    [
        (bearer(mint_token("ivan")), False),
        (bearer(mint_crm_token("ivan")), False),
        (bearer("crmpat-ivan"), False),
        ({"X-Authenticated-User": "ivan"}, True),
    ],
)
def test_offboarded_user_is_refused_with_any_credential(stage, directory, headers, peer_trusted):
    assert refusal(stage, headers, directory, peer_trusted, error=Forbidden) == "user-inactive"


def test_offboarding_takes_effect_at_once_for_a_cached_token(stage, directory, load_users):
    token = mint_token("alice")
    assert identify(stage, bearer(token), directory).user.id == "alice"
    suspended, errors = load_users("roles: {r: {}}\nusers: {alice: {roles: [r], status: suspended}}\n")
    assert errors == []
    assert refusal(stage, bearer(token), suspended, error=Forbidden) == "user-inactive"


def test_non_jwt_bearer_without_crm_tokens_is_invalid(tmp_path, directory):
    stage = make_stage({"jwt": {"algorithms": ["HS256"], "secret": DEV_JWT_SECRET}}, tmp_path)
    assert refusal(stage, bearer("crmpat-alice"), directory) == "token-invalid"


def test_crm_jwt_is_refused_when_only_personal_tokens_are_accepted(tmp_path, directory):
    stage = make_stage({"crm_credential": {"personal_tokens": True}}, tmp_path)
    assert refusal(stage, bearer(mint_crm_token("bob")), directory) == "token-invalid"
    assert identify(stage, bearer("crmpat-bob"), directory).method == "crm_token"


def test_disabled_authenticators_are_not_run(tmp_path, directory):
    stage = make_stage({"api_key": {}, "trusted_header": {"enabled": False}}, tmp_path)
    assert stage.methods == ("api_key",)
    assert refusal(stage, {"X-Authenticated-User": "dave"}, directory, True) == "unauthenticated"
    assert refusal(stage, bearer(mint_token("alice")), directory) == "unauthenticated"


def test_cached_crm_token_expires_with_the_stage_clock(tmp_path, directory):
    clock = Clock(time.time())
    stage = IdentityStage(DEV_IDENTITY_CONFIG, tmp_path, clock=clock)
    token = mint_crm_token("bob", ttl_seconds=60)
    assert identify(stage, bearer(token), directory).method == "crm_jwt"
    clock.now += 60 + 30
    assert refusal(stage, bearer(token), directory) == "token-expired"


def test_same_token_twice_in_headers_is_refused(stage, directory):
    token = mint_token("alice")
    headers = CIMultiDict([("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")])
    assert refusal(stage, headers, directory) == "token-invalid"


def test_identity_headers_are_lower_case_and_cover_the_configured_names(tmp_path):
    assert {"authorization", "x-api-key", "x-authenticated-user"} == IDENTITY_HEADERS
    stage = make_stage(
        {
            "api_key": {"header": "X-Service-Key"},
            "trusted_header": {"header": "X-Forwarded-User", "mfa_header": "X-Forwarded-MFA"},
        },
        tmp_path,
    )
    assert stage.identity_headers == {"x-service-key", "x-forwarded-user", "x-forwarded-mfa"}
    assert IdentityStage(DEV_IDENTITY_CONFIG, ".").identity_headers == IDENTITY_HEADERS


def test_minted_dev_token_carries_the_dev_claims():
    token = mint_token("alice", ttl_seconds=120, mfa=True, now=1_700_000_000)
    claims = pyjwt.decode(
        token,
        DEV_JWT_SECRET,
        algorithms=["HS256"],
        audience=DEV_AUDIENCE,
        issuer=DEV_ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert (claims["sub"], claims["iat"], claims["exp"]) == ("alice", 1_700_000_000, 1_700_000_120)
    assert "mfa" in claims["amr"]


def test_mfa_dev_token_sets_identity_mfa(stage, directory):
    assert identify(stage, bearer(mint_token("dave", mfa=True)), directory).mfa is True
    assert identify(stage, bearer(mint_token("dave")), directory).mfa is False


def test_a_verified_token_gives_the_identity_built_the_first_time(stage, directory):
    token = mint_token("alice")
    first = identify(stage, bearer(token), directory)
    assert identify(stage, bearer(token), directory) is first


def test_a_reloaded_directory_is_seen_by_a_token_verified_before(stage, directory, load_users):
    token = mint_token("alice")
    assert identify(stage, bearer(token), directory).roles >= {"sales_rep"}
    promoted, errors = load_users("roles: {auditor: {}}\nusers: {alice: {roles: [auditor]}}\n")
    assert errors == []
    assert identify(stage, bearer(token), promoted).roles == {"auditor"}
