"""Authorization: Bearer <jwt>: allow-listed algorithms, keys of the right kind, claims checked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from gateway.errors import Unauthenticated
from gateway.identity.config import JwtKeys
from gateway.identity.devkeys import DEV_AUDIENCE, DEV_ISSUER, DEV_JWT_SECRET, mint_token
from gateway.identity.jwt_bearer import JwtAuthenticator, build_jwt

from .conftest import Clock, bearer, public_pem, sign, write_jwks

SECRET = DEV_JWT_SECRET


def make(tmp_path, clock=None, **cfg) -> JwtAuthenticator:
    base = {"algorithms": ["HS256"], "secret": SECRET, "issuer": DEV_ISSUER, "audience": DEV_AUDIENCE}
    auth, problems = build_jwt(
        JwtKeys.model_validate({**base, **cfg}), tmp_path, "identity.jwt", clock=clock or time.time
    )
    assert problems == []
    return auth


def claims(sub="alice", ttl=600, **extra) -> dict:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + ttl, "iss": DEV_ISSUER, "aud": DEV_AUDIENCE, **extra}


def reason(auth, token, directory) -> str:
    with pytest.raises(Unauthenticated) as info:
        auth.authenticate(bearer(token), False, directory)
    return info.value.reason


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, payload: dict, key: bytes | None) -> str:
    """A token signed by hand (PyJWT refuses to make the malicious ones)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    sig = b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def test_valid_token_gives_the_directory_user(tmp_path, directory):
    token = mint_token("alice")
    identity = make(tmp_path).authenticate(bearer(token), False, directory)
    assert identity.user is directory.get("alice")
    assert identity.method == "jwt"
    assert identity.mfa is False and identity.forward_credential is False
    assert identity.expires_at == identity.claims["exp"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic YWxpY2U6cHc="}, bearer("crmpat-alice")])
def test_no_jwt_bearer_is_not_this_authenticators_business(tmp_path, directory, headers):
    assert make(tmp_path).authenticate(headers, False, directory) is None


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", [None, b"whatever"])
def test_alg_none_is_refused_in_every_spelling(tmp_path, directory, alg, signature):
    token = forge({"alg": alg, "typ": "JWT"}, claims(), signature)
    assert reason(make(tmp_path), token, directory) == "token-algorithm"


def test_algorithm_outside_the_allow_list_is_refused(tmp_path, directory):
    token = sign(claims(), "k" * 64, "HS512")
    assert reason(make(tmp_path), token, directory) == "token-algorithm"


def test_hs256_signed_with_the_public_key_is_refused_when_only_rs256_is_allowed(tmp_path, directory, rsa_key):
    (tmp_path / "sso.pem").write_bytes(public_pem(rsa_key))
    auth = make(tmp_path, algorithms=["RS256"], secret=None, public_keys=["sso.pem"])
    token = forge({"alg": "HS256", "typ": "JWT"}, claims(), public_pem(rsa_key))
    assert reason(auth, token, directory) == "token-algorithm"
    assert auth.authenticate(bearer(sign(claims(), rsa_key, "RS256")), False, directory).user.id == "alice"


def test_public_key_is_never_used_as_hmac_secret_when_both_kinds_are_allowed(tmp_path, directory, rsa_key):
    (tmp_path / "sso.pem").write_bytes(public_pem(rsa_key))
    auth = make(tmp_path, algorithms=["HS256", "RS256"], public_keys=["sso.pem"])
    token = forge({"alg": "HS256", "typ": "JWT"}, claims(), public_pem(rsa_key))
    assert reason(auth, token, directory) == "token-invalid"
    assert auth.authenticate(bearer(mint_token("bob")), False, directory).user.id == "bob"


def test_tampered_signature_is_invalid(tmp_path, directory):
    token = mint_token("alice")
    head, payload, sig = token.split(".")
    evil_payload = b64(json.dumps(claims(sub="grace")).encode())
    assert reason(make(tmp_path), f"{head}.{evil_payload}.{sig}", directory) == "token-invalid"


def test_expired_token_is_refused(tmp_path, directory):
    token = mint_token("alice", ttl_seconds=60, now=time.time() - 3600)
    assert reason(make(tmp_path), token, directory) == "token-expired"


def test_leeway_accepts_a_token_that_just_expired(tmp_path, directory):
    token = mint_token("alice", ttl_seconds=60, now=time.time() - 70)
    assert make(tmp_path).authenticate(bearer(token), False, directory) is not None
    assert reason(make(tmp_path, leeway_seconds=0), token, directory) == "token-expired"


def test_missing_exp_is_refused(tmp_path, directory):
    token = sign({k: v for k, v in claims().items() if k != "exp"}, SECRET, "HS256")
    assert reason(make(tmp_path), token, directory) == "token-invalid"


def test_not_yet_valid_token_is_refused(tmp_path, directory):
    token = sign(claims(nbf=int(time.time()) + 3600), SECRET, "HS256")
    assert reason(make(tmp_path), token, directory) == "token-invalid"


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"iss": "someone-else"}, "token-issuer"),
        ({"iss": None}, "token-issuer"),
        ({"aud": "another-app"}, "token-audience"),
        ({"aud": None}, "token-audience"),
        ({"sub": None}, "token-invalid"),
        ({"sub": "mallory"}, "user-unknown"),
    ],
)
def test_claims_are_checked(tmp_path, directory, change, expected):
    payload = {k: v for k, v in {**claims(), **change}.items() if v is not None}
    assert reason(make(tmp_path), sign(payload, SECRET, "HS256"), directory) == expected


def test_issuer_and_audience_are_not_checked_when_not_configured(tmp_path, directory):
    auth = make(tmp_path, issuer=None, audience=None)
    token = sign({k: v for k, v in claims().items() if k not in ("iss", "aud")}, SECRET, "HS256")
    assert auth.authenticate(bearer(token), False, directory).user.id == "alice"


def test_custom_user_claim(tmp_path, directory):
    auth = make(tmp_path, user_claim="preferred_username")
    token = sign(claims(sub="00u1abc", preferred_username="carol"), SECRET, "HS256")
    assert auth.authenticate(bearer(token), False, directory).user.id == "carol"


@pytest.mark.parametrize(
    "amr, mfa",
    [
        (None, False),
        (["pwd"], False),
        ([], False),
        (["pwd", "mfa"], True),
        (["pwd", "otp"], True),
        (["hwk"], True),
        (["swk"], True),
        (["totp"], True),
        (["webauthn"], True),
        ("otp", True),
        ({"mfa": True}, False),
    ],
)
def test_mfa_comes_from_amr(tmp_path, directory, amr, mfa):
    payload = claims() if amr is None else claims(amr=amr)
    identity = make(tmp_path).authenticate(bearer(sign(payload, SECRET, "HS256")), False, directory)
    assert identity.mfa is mfa


def test_rs256_with_rotated_pem_keys(tmp_path, directory, rsa_key, rsa_key2):
    (tmp_path / "old.pem").write_bytes(public_pem(rsa_key))
    (tmp_path / "new.pem").write_bytes(public_pem(rsa_key2))
    auth = make(tmp_path, algorithms=["RS256"], secret=None, public_keys=["old.pem", "new.pem"])
    for key in (rsa_key, rsa_key2):
        assert auth.authenticate(bearer(sign(claims(), key, "RS256")), False, directory).user.id == "alice"


def test_jwks_selects_the_key_by_kid(tmp_path, directory, rsa_key, rsa_key2, ec_key):
    write_jwks(tmp_path / "jwks.json", {"k1": rsa_key, "k2": rsa_key2, "e1": ec_key})
    auth = make(tmp_path, algorithms=["RS256", "ES256"], secret=None, jwks_file="jwks.json")
    ok = [sign(claims(), rsa_key2, "RS256", {"kid": "k2"}), sign(claims(), ec_key, "ES256", {"kid": "e1"})]
    for token in ok:
        assert auth.authenticate(bearer(token), False, directory).user.id == "alice"
    assert reason(auth, sign(claims(), rsa_key, "RS256", {"kid": "k2"}), directory) == "token-invalid"
    assert reason(auth, sign(claims(), rsa_key, "RS256", {"kid": "e1"}), directory) == "token-invalid"


def test_jwks_unknown_kid_is_invalid(tmp_path, directory, rsa_key):
    write_jwks(tmp_path / "jwks.json", {"k1": rsa_key})
    auth = make(tmp_path, algorithms=["RS256"], secret=None, jwks_file="jwks.json")
    assert reason(auth, sign(claims(), rsa_key, "RS256", {"kid": "k9"}), directory) == "token-invalid"


@pytest.mark.parametrize(
    "token, expected",
    [
        ("a.b", None),  # not JWT-shaped: left to the CRM personal-token check
        ("a.b.c", "token-invalid"),
        ("eyJhbGciOiJIUzI1NiJ9.e30.", "token-invalid"),
        ("x" * 9000, "token-invalid"),
    ],
)
def test_garbage_bearer_tokens(tmp_path, directory, token, expected):
    auth = make(tmp_path)
    if expected is None:
        assert auth.authenticate(bearer(token), False, directory) is None
    else:
        assert reason(auth, token, directory) == expected


def test_authorization_sent_twice_is_refused(tmp_path, directory):
    from multidict import CIMultiDict

    token = mint_token("alice")
    headers = CIMultiDict([("Authorization", f"Bearer {token}"), ("authorization", "Bearer x.y.z")])
    assert reason_for_headers(make(tmp_path), headers, directory) == "token-invalid"


def reason_for_headers(auth, headers, directory) -> str:
    with pytest.raises(Unauthenticated) as info:
        auth.authenticate(headers, False, directory)
    return info.value.reason


class TestCache:
    def test_second_use_does_not_verify_the_signature_again(self, tmp_path, directory, monkeypatch):
        auth = make(tmp_path)
        calls = []
        real = auth.verifier._verify
        monkeypatch.setattr(auth.verifier, "_verify", lambda t: calls.append(t) or real(t))
        token = mint_token("alice")
        for _ in range(3):
            assert auth.authenticate(bearer(token), False, directory).user.id == "alice"
        assert len(calls) == 1

    def test_cached_token_expires_at_exp_plus_leeway(self, tmp_path, directory):
        clock = Clock(time.time())
        auth = make(tmp_path, clock=clock, leeway_seconds=5)
        token = mint_token("alice", ttl_seconds=60)
        exp = auth.authenticate(bearer(token), False, directory).expires_at
        clock.now = exp + 4
        assert auth.authenticate(bearer(token), False, directory) is not None
        clock.now = exp + 5
        assert reason(auth, token, directory) == "token-expired"
        assert reason(auth, token, directory) == "token-expired"  # and stays refused, uncached

    def test_cache_keeps_claims_not_users(self, tmp_path, directory, load_users):
        auth = make(tmp_path)
        token = mint_token("alice")
        assert auth.authenticate(bearer(token), False, directory).user.status == "active"
        without_alice, _ = load_users("roles: {r: {}}\nusers: {bob: {roles: [r]}}\n")
        assert reason(auth, token, without_alice) == "user-unknown"

    def test_cache_is_bounded(self, tmp_path, directory):
        auth = make(tmp_path, cache_size=2)
        for user in ("alice", "bob", "carol"):
            auth.authenticate(bearer(mint_token(user)), False, directory)
        assert len(auth.verifier._cache) == 2

    def test_failures_are_not_cached(self, tmp_path, directory):
        auth = make(tmp_path)
        reason(auth, mint_token("alice", now=time.time() - 7200), directory)
        assert len(auth.verifier._cache) == 0


@pytest.mark.parametrize(
    "change",
    [{"exp": "9999999999"}, {"exp": [9999999999]}, {"nbf": "0"}, {"iat": "0"}, {"exp": 1e400}],
    ids=["exp-string", "exp-list", "nbf-string", "iat-string", "exp-infinite"],
)
def test_time_claims_must_be_json_numbers(tmp_path, directory, change):
    # PyJWT runs int() on exp/nbf/iat, so a string "9999999999" would otherwise pass as a date.
    payload = {**claims(), **change}
    token = forge({"alg": "HS256", "typ": "JWT"}, payload, SECRET.encode())
    assert reason(make(tmp_path), token, directory) == "token-invalid"
