"""IdentityConfig: ambiguous or unusable settings are refused with exact messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.identity.config import IdentityConfig
from gateway.identity.keys import IdentityConfigError
from gateway.identity.stage import IdentityStage, check_identity

from .conftest import public_pem


def problems(config: dict) -> list[str]:
    with pytest.raises(ValidationError) as info:
        IdentityConfig.model_validate(config)
    return [e["msg"].removeprefix("Value error, ") for e in info.value.errors()]


@pytest.mark.parametrize(
    "jwt, message",
    [
        (
            {"algorithms": ["RS256"]},
            "RS256 listed but no public key configured (public_keys, jwks_file, jwks_url or oidc_discovery)",
        ),
        ({"algorithms": ["HS256"]}, "HS256 listed but no secret configured (secret, secret_env or secret_file)"),
        ({"algorithms": ["none"], "secret": "s"}, "algorithm 'none' is never allowed"),
        ({"algorithms": ["NoNe"], "secret": "s"}, "algorithm 'none' is never allowed"),
        ({"algorithms": [], "secret": "s"}, "list at least one algorithm"),
        (
            {"algorithms": ["HS256"], "secret": "s", "secret_env": "X"},
            "give at most one of 'secret', 'secret_env', 'secret_file'",
        ),
        (
            {"algorithms": ["RS256"], "secret": "s", "public_keys": ["k.pem"]},
            "a secret is configured but no HS* algorithm is listed",
        ),
        (
            {"algorithms": ["HS256"], "secret": "s", "jwks_file": "j.json"},
            "public keys are configured but no RS*/PS*/ES*/EdDSA algorithm is listed",
        ),
        (
            {"algorithms": ["HS256"], "secret": "-----BEGIN PUBLIC KEY-----\nMII..."},
            "secret looks like a PEM key: HS* take a shared secret; put public keys in 'public_keys'",
        ),
        ({"algorithms": ["HS256"], "secret": "s", "colour": "red"}, "Extra inputs are not permitted"),
        # fetched keys
        (
            {"algorithms": ["RS256"], "jwks_url": "http://sso.example.com/keys"},
            "jwks_url must be an https:// URL (http:// only on loopback), got 'http://sso.example.com/keys'",
        ),
        (
            {"algorithms": ["RS256"], "jwks_url": "file:///etc/keys"},
            "jwks_url must be an https:// URL (http:// only on loopback), got 'file:///etc/keys'",
        ),
        (
            {"algorithms": ["RS256"], "oidc_discovery": True},
            "oidc_discovery needs 'issuer' (the discovery document lives under it)",
        ),
        (
            {"algorithms": ["RS256"], "oidc_discovery": True, "issuer": "crmgw-dev"},
            "issuer (for oidc_discovery) must be an https:// URL (http:// only on loopback), got 'crmgw-dev'",
        ),
        (
            {
                "algorithms": ["RS256"],
                "oidc_discovery": True,
                "issuer": "https://sso.example.com",
                "jwks_url": "https://sso.example.com/k",
            },
            "give either 'jwks_url' or 'oidc_discovery', not both",
        ),
        (
            {"algorithms": ["RS256"], "jwks_url": "https://sso.example.com/k", "jwks_file": "j.json"},
            "fetched keys (jwks_url / oidc_discovery) exclude 'public_keys' and 'jwks_file'",
        ),
        ({"algorithms": ["HS256"], "secret": "s", "jwks_cache": {"ttl_seconds": 0}}, "Input should be greater than 0"),
        # which user, which claims
        (
            {"algorithms": ["HS256"], "secret": "s", "user_attribute": "team"},
            "user_attribute 'team' does not identify one user; use id, email or a custom attribute",
        ),
        ({"algorithms": ["HS256"], "secret": "s", "user_attribute": "a b"}, "not an attribute name: 'a b'"),
        ({"algorithms": ["HS256"], "secret": "s", "require": {"org_id": []}}, "require: 'org_id' lists no value"),
        (
            {"algorithms": ["HS256"], "secret": "s", "require": {"iss": "x"}},
            "require: 'iss' is checked by its own setting (issuer, audience, ...)",
        ),
    ],
)
def test_jwt_section_mistakes(jwt, message):
    assert problems({"jwt": jwt}) == [message]


def test_trusted_header_user_attribute_is_checked():
    assert problems({"trusted_header": {"user_attribute": "region"}}) == [
        "user_attribute 'region' does not identify one user; use id, email or a custom attribute"
    ]


@pytest.mark.parametrize(
    "url", ["https://sso.example.com/keys", "http://127.0.0.1:8443/keys", "http://[::1]/k", "http://localhost/k"]
)
def test_jwks_url_https_or_loopback(url):
    cfg = IdentityConfig.model_validate({"jwt": {"algorithms": ["RS256"], "jwks_url": url}})
    assert cfg.jwt.remote and cfg.jwt.jwks_url == url


def test_required_claim_values_keep_their_types():
    cfg = IdentityConfig.model_validate(
        {"jwt": {"algorithms": ["HS256"], "secret": "s", "require": {"org_id": "42", "tier": [1, 2], "staff": True}}}
    )
    assert cfg.jwt.require == {"org_id": "42", "tier": [1, 2], "staff": True}


def test_unknown_algorithm_lists_the_known_ones():
    (message,) = problems({"jwt": {"algorithms": ["HS1"], "secret": "s"}})
    assert message.startswith("unknown algorithm 'HS1'; use one of ES256, ES384")


def test_no_authenticator_enabled_is_refused():
    assert problems({}) == ["no authenticator is enabled: nobody could log in"]
    assert problems({"api_key": {"enabled": False}}) == ["no authenticator is enabled: nobody could log in"]


def test_two_authenticators_cannot_share_a_header():
    assert problems({"api_key": {"header": "X-User"}, "trusted_header": {"header": "x-user"}}) == [
        "header 'x-user' is used by two authenticators"
    ]


def test_crm_credential_that_accepts_nothing_is_refused():
    assert problems({"crm_credential": {"personal_tokens": False}}) == [
        "crm_credential accepts nothing: configure 'jwt' or set personal_tokens: true"
    ]


def build_problems(config: dict, base_dir) -> list[str]:
    with pytest.raises(IdentityConfigError) as info:
        IdentityStage(IdentityConfig.model_validate(config), base_dir)
    return info.value.problems


def test_missing_files_are_reported_relative_to_base_dir(tmp_path):
    config = {
        "jwt": {"algorithms": ["RS256"], "public_keys": ["keys/sso.pem"], "jwks_file": "keys/jwks.json"},
        "crm_credential": {"jwt": {"algorithms": ["HS256"], "secret_file": "crm.secret"}},
    }
    assert build_problems(config, tmp_path) == [
        f"identity.jwt.public_keys[0]: file not found: {tmp_path / 'keys/sso.pem'}",
        f"identity.jwt.jwks_file: file not found: {tmp_path / 'keys/jwks.json'}",
        f"identity.crm_credential.jwt.secret_file: file not found: {tmp_path / 'crm.secret'}",
    ]
    assert check_identity(IdentityConfig.model_validate(config), tmp_path) == build_problems(config, tmp_path)


def test_unset_secret_env_is_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("CRMGW_TEST_SECRET", raising=False)
    config = {"jwt": {"algorithms": ["HS256"], "secret_env": "CRMGW_TEST_SECRET"}}
    assert build_problems(config, tmp_path) == [
        "identity.jwt.secret_env: environment variable 'CRMGW_TEST_SECRET' is not set"
    ]
    monkeypatch.setenv("CRMGW_TEST_SECRET", "x" * 32)
    assert check_identity(IdentityConfig.model_validate(config), tmp_path) == []


def test_private_key_file_is_refused(tmp_path, rsa_key):
    from cryptography.hazmat.primitives import serialization

    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "k.pem").write_bytes(pem)
    config = {"jwt": {"algorithms": ["RS256"], "public_keys": ["k.pem"]}}
    assert build_problems(config, tmp_path) == [
        f"identity.jwt.public_keys[0]: {tmp_path / 'k.pem'} holds a private key; configure the public key only"
    ]


def test_key_that_fits_no_listed_algorithm_is_refused(tmp_path, ec_key):
    (tmp_path / "ec.pem").write_bytes(public_pem(ec_key))
    config = {"jwt": {"algorithms": ["RS256"], "public_keys": ["ec.pem"]}}
    assert build_problems(config, tmp_path) == [
        "identity.jwt.public_keys[0]: key fits none of the listed algorithms ['RS256']"
    ]


def test_pem_secret_file_is_refused(tmp_path, rsa_key):
    (tmp_path / "s").write_bytes(public_pem(rsa_key))
    config = {"jwt": {"algorithms": ["HS256"], "secret_file": "s"}}
    assert build_problems(config, tmp_path) == [
        f"identity.jwt.secret_file: file holds a PEM key, not a shared secret: {tmp_path / 's'}"
    ]


@pytest.mark.parametrize(
    "jwk, message",
    [
        (
            {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
            "key #0 ('h') is a symmetric key; HS* algorithms use 'secret', never the JWKS",
        ),
        ({"kty": "RSA", "n": "AQAB", "e": "AQAB"}, "key #0 has no 'kid'"),
    ],
)
def test_bad_jwks_entries_are_refused(tmp_path, jwk, message):
    import json

    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    config = {"jwt": {"algorithms": ["RS256"], "jwks_file": "jwks.json"}}
    assert build_problems(config, tmp_path) == [f"identity.jwt.jwks_file: {message}"]


def test_dev_config_builds():
    from gateway.identity.devkeys import DEV_IDENTITY_CONFIG

    stage = IdentityStage(DEV_IDENTITY_CONFIG, ".")
    assert stage.methods == ("trusted_header", "api_key", "bearer")
