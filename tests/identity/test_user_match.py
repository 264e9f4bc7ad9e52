"""Which directory user a credential names: any declared attribute, exactly one user, else 401."""

from __future__ import annotations

import time

import pytest

from gateway.errors import Unauthenticated
from gateway.identity.devkeys import DEMOCRM_ISSUER, DEMOCRM_JWT_SECRET, DEV_AUDIENCE, DEV_ISSUER, DEV_JWT_SECRET

from .conftest import bearer, make_stage, sign, sign_as_democrm

USERS = """\
roles: {sales_rep: {}}
users:
  alice: {email: alice@example.com, roles: [sales_rep], attributes: {crm_user_id: "1001"}}
  bob: {email: Bob@Example.com, roles: [sales_rep], attributes: {crm_user_id: "1002"}}
  carol: {email: carol@example.com, roles: [sales_rep], attributes: {crm_user_id: "1003"}}
  carol2: {email: CAROL@example.com, roles: [sales_rep], attributes: {crm_user_id: "1003"}}
  dave: {roles: [sales_rep]}
"""


@pytest.fixture
def users(load_users):
    loaded, errors = load_users(USERS)
    assert errors == []
    return loaded


def claims(**extra) -> dict:
    now = int(time.time())
    return {"iat": now, "exp": now + 600, **extra}


def gateway_jwt(**cfg) -> dict:
    return {
        "jwt": {
            "algorithms": ["HS256"],
            "secret": DEV_JWT_SECRET,
            "issuer": DEV_ISSUER,
            "audience": DEV_AUDIENCE,
            **cfg,
        }
    }


def crm_jwt(**cfg) -> dict:
    return {
        "crm_credential": {
            "jwt": {"algorithms": ["HS256"], "secret": DEMOCRM_JWT_SECRET, "issuer": DEMOCRM_ISSUER, **cfg}
        }
    }


def gw_token(**payload) -> dict[str, str]:
    return bearer(sign(claims(iss=DEV_ISSUER, aud=DEV_AUDIENCE, **payload), DEV_JWT_SECRET, "HS256"))


def crm_token(**payload) -> dict[str, str]:
    return bearer(sign_as_democrm(claims(iss=DEMOCRM_ISSUER, **payload)))


def refusal(stage, headers, directory, peer_trusted=False) -> str:
    with pytest.raises(Unauthenticated) as info:
        stage.identify(headers, peer_trusted, directory)
    return info.value.reason


@pytest.mark.parametrize(
    "attribute, value, expected",
    [
        ("id", "alice", ["alice"]),
        ("id", "ALICE", []),
        ("email", "alice@example.com", ["alice"]),
        ("email", "ALICE@EXAMPLE.COM", ["alice"]),  # e-mail addresses: case-insensitive
        ("email", "bob@example.com", ["bob"]),
        ("email", "carol@example.com", ["carol", "carol2"]),
        ("crm_user_id", "1001", ["alice"]),
        ("crm_user_id", "1003", ["carol", "carol2"]),
        ("crm_user_id", "9999", []),
        ("cost_center", "1001", []),  # nobody has it
    ],
)
def test_directory_finds_users_by_any_attribute(users, attribute, value, expected):
    assert sorted(u.id for u in users.find(attribute, value)) == expected


def test_crm_jwt_without_sub_names_its_user_by_email(tmp_path, users):
    stage = make_stage(crm_jwt(user_claim="user_email", user_attribute="email"), tmp_path)
    identity = stage.identify(crm_token(user_email="alice@example.com"), False, users)
    assert (identity.user.id, identity.method, identity.forward_credential) == ("alice", "crm_jwt", True)


@pytest.mark.parametrize("user_id", [1002, "1002"], ids=["number", "string"])
def test_crm_jwt_names_its_user_by_a_custom_attribute(tmp_path, users, user_id):
    stage = make_stage(crm_jwt(user_claim="user_id", user_attribute="crm_user_id"), tmp_path)
    assert stage.identify(crm_token(user_id=user_id), False, users).user.id == "bob"


def test_gateway_jwt_names_its_user_by_email(tmp_path, users):
    stage = make_stage(gateway_jwt(user_claim="email", user_attribute="email"), tmp_path)
    assert stage.identify(gw_token(email="Alice@Example.com", sub="00u1x"), False, users).user.id == "alice"


@pytest.mark.parametrize(
    "payload, reason",
    [
        ({"user_id": 9999}, "user-unknown"),
        ({"user_id": 1003}, "user-ambiguous"),  # two users carry it: neither is chosen
        ({"sub": "alice"}, "token-invalid"),  # the configured claim is missing
        ({"user_id": ""}, "token-invalid"),
        ({"user_id": True}, "token-invalid"),  # a boolean is not a user name, even if Python says 1
        ({"user_id": [1001]}, "token-invalid"),
        ({"user_id": 1001.0}, "token-invalid"),
    ],
)
def test_exactly_one_user_must_match(tmp_path, users, payload, reason):
    stage = make_stage(crm_jwt(user_claim="user_id", user_attribute="crm_user_id"), tmp_path)
    assert refusal(stage, crm_token(**payload), users) == reason


def test_user_without_the_attribute_is_not_found(tmp_path, users):
    stage = make_stage(gateway_jwt(user_claim="email", user_attribute="email"), tmp_path)
    assert refusal(stage, gw_token(email="dave"), users) == "user-unknown"


def test_default_is_still_sub_matched_with_the_id(tmp_path, users):
    stage = make_stage(gateway_jwt(), tmp_path)
    assert stage.identify(gw_token(sub="carol2"), False, users).user.id == "carol2"
    assert refusal(stage, gw_token(sub="carol@example.com"), users) == "user-unknown"


@pytest.mark.parametrize(
    "value, expected",
    [("bob@example.com", "bob"), ("carol@example.com", "user-ambiguous"), ("bob", "user-unknown")],
)
def test_trusted_header_matched_by_email(tmp_path, users, value, expected):
    stage = make_stage({"trusted_header": {"user_attribute": "email"}}, tmp_path)
    headers = {"X-Authenticated-User": value}
    if expected.startswith("user-"):
        assert refusal(stage, headers, users, peer_trusted=True) == expected
    else:
        assert stage.identify(headers, True, users).user.id == expected


def test_lookup_follows_the_directory_not_the_token_cache(tmp_path, users, load_users):
    stage = make_stage(crm_jwt(user_claim="user_id", user_attribute="crm_user_id"), tmp_path)
    token = crm_token(user_id=1001)
    assert stage.identify(token, False, users).user.id == "alice"
    moved, errors = load_users(USERS.replace('crm_user_id: "1001"', 'crm_user_id: "2001"'))
    assert errors == []
    assert refusal(stage, token, moved) == "user-unknown"
