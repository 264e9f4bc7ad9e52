"""Who may call democrm: service token, personal access tokens, CRM-issued JWTs; nothing else."""

from __future__ import annotations

import time
import warnings

import jwt
import pytest

from democrm.auth import Caller, authenticate, issue_token

SECRET = "democrm-dev-secret"


def forged(claims: dict, secret: str = SECRET, algorithm: str = "HS256") -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm=algorithm)


def now() -> int:
    return int(time.time())


def check(authorization, crm_user=None):
    return authenticate(authorization, crm_user, service_token="svc-token", jwt_secret=SECRET)


@pytest.mark.parametrize(
    ("authorization", "crm_user", "expected"),
    [
        ("Bearer svc-token", "alice", Caller("service", "alice")),
        ("bearer svc-token", " bob ", Caller("service", "bob")),
        ("Bearer svc-token", None, Caller("service", None)),
        ("Bearer crmpat-carol", "alice", Caller("pat", "carol")),
        ("Bearer crmpat-ivan", None, Caller("pat", "ivan")),  # the CRM does not know who left
        ("Bearer crmpat-svc-reporting", None, Caller("pat", "svc-reporting")),
        (None, "alice", None),
        ("", None, None),
        ("Bearer", None, None),
        ("Basic svc-token", None, None),
        ("svc-token", None, None),
        ("Bearer svc-token-extra", None, None),
        ("Bearer crmpat-mallory", None, None),
        ("Bearer crmpat-", None, None),
        ("Bearer s\udcffvc", None, None),
    ],
)
def test_tokens(authorization, crm_user, expected):
    assert check(authorization, crm_user) == expected


def test_an_issued_token_logs_in_as_its_user():
    assert check(f"Bearer {issue_token('dave', SECRET)}", "alice") == Caller("jwt", "dave")


def test_issued_tokens_last_one_hour():
    claims = jwt.decode(issue_token("dave", SECRET, now=1000), options={"verify_signature": False})
    assert claims == {"iss": "democrm", "sub": "dave", "iat": 1000, "exp": 4600}


@pytest.mark.parametrize(
    "token",
    [
        forged({"iss": "democrm", "sub": "dave", "exp": now() - 60}),
        forged({"iss": "democrm", "sub": "dave", "exp": now() + 60}, secret="another-secret-of-enough-length!"),
        forged({"iss": "elsewhere", "sub": "dave", "exp": now() + 60}),
        forged({"sub": "dave", "exp": now() + 60}),
        forged({"iss": "democrm", "sub": "dave"}),
        forged({"iss": "democrm", "sub": "mallory", "exp": now() + 60}),
        forged({"iss": "democrm", "sub": "dave", "exp": now() + 60}, secret="", algorithm="none"),
        forged({"iss": "democrm", "sub": "dave", "exp": now() + 60}, algorithm="HS512"),
    ],
    ids=["expired", "wrong-secret", "wrong-issuer", "no-issuer", "no-exp", "unknown-user", "alg-none", "alg-hs512"],
)
def test_bad_jwts_are_refused(token):
    assert check(f"Bearer {token}") is None
