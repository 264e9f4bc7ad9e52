"""Who is calling democrm: the service token, a personal access token, or a CRM-issued JWT.

Like the legacy CRMs the gateway protects, democrm only knows "logged in or not": any valid token
may do anything. Deliberately no other checks (an offboarded user's token still works here), so the
gateway's own checks are what the tests exercise. ``X-CRM-User`` only counts with the service
token (that is how integrations act for someone); a PAT or JWT always acts as its own user.
"""

from __future__ import annotations

import dataclasses
import hmac
import time
import warnings
from typing import Literal

import jwt
from aiohttp import web

from democrm.seed import DIRECTORY

ISSUER = "democrm"
TOKEN_LIFETIME_S = 3600
PAT_PREFIX = "crmpat-"
ALGORITHMS = ["HS256"]  # explicit allow-list: never trust the token's own "alg"


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller. ``user`` is None only for the service token without X-CRM-User."""

    kind: Literal["service", "pat", "jwt"]
    user: str | None


CALLER = web.RequestKey("CALLER", Caller)  # set by the app's require_login middleware


# The contract's demo secret ("democrm-dev-secret") is shorter than the 32 bytes PyJWT recommends
# for HS256, and PyJWT warns on every call while the test suite turns warnings into errors. The CRM is
# a demo fixture, so that one warning is silenced around the two PyJWT calls below, nowhere else.


def issue_token(user: str, secret: str, *, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {"iss": ISSUER, "sub": user, "iat": issued, "exp": issued + TOKEN_LIFETIME_S}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS256")


def _jwt_user(token: str, secret: str) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            claims = jwt.decode(
                token,
                secret,
                algorithms=ALGORITHMS,
                issuer=ISSUER,
                leeway=5,
                options={"require": ["exp", "iss", "sub"]},
            )
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) and subject in DIRECTORY else None


def authenticate(
    authorization: str | None, crm_user: str | None, *, service_token: str, jwt_secret: str
) -> Caller | None:
    """The caller named by the ``Authorization`` header, or None (-> 401 "not logged in")."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if hmac.compare_digest(token.encode("utf-8", "surrogateescape"), service_token.encode("utf-8")):
        # The service token acts for whoever X-CRM-User names (that is how integrations work).
        return Caller("service", (crm_user or "").strip() or None)
    if not token.isascii():  # no valid token of ours has other characters (and PyJWT would choke)
        return None
    if token.startswith(PAT_PREFIX):
        pat_user = token[len(PAT_PREFIX) :]
        return Caller("pat", pat_user) if pat_user in DIRECTORY else None
    jwt_user = _jwt_user(token, jwt_secret)
    return Caller("jwt", jwt_user) if jwt_user is not None else None
