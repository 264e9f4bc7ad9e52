"""``Authorization: Bearer <jwt>``: the organisation's SSO tokens, verified by the gateway.

The same class verifies the CRM's own JWTs for :mod:`gateway.identity.crm_credential`; only the
method name and whether the credential is forwarded to the CRM differ.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Mapping

from gateway.identity.base import bearer_token, looks_like_jwt, lookup_user, mfa_from_amr
from gateway.identity.config import JwtKeys
from gateway.identity.directory import Directory
from gateway.identity.keys import load_keys
from gateway.identity.verifier import Claims, JwtVerifier
from gateway.model import Identity


class JwtAuthenticator:
    name = "jwt"

    def __init__(self, verifier: JwtVerifier, *, method: str = "jwt", forward_credential: bool = False):
        self.verifier = verifier
        self.method = method
        self.forward_credential = forward_credential

    def authenticate(
        self, headers: Mapping[str, str], peer_trusted: bool, directory: Directory
    ) -> Identity | None:
        token = bearer_token(headers)
        if token is None or not looks_like_jwt(token):
            return None
        return self.to_identity(self.verifier.verify(token), directory)

    def to_identity(self, claims: Claims, directory: Directory) -> Identity:
        """Verified claims -> the directory user they name (looked up now, never cached)."""
        user = lookup_user(directory, claims[self.verifier.user_claim])
        return Identity(
            user=user,
            method=self.method,
            mfa=mfa_from_amr(claims),
            claims=claims,
            expires_at=float(claims["exp"]),
            forward_credential=self.forward_credential,
        )


def build_jwt(
    cfg: JwtKeys,
    base_dir: Path,
    section: str,
    *,
    method: str = "jwt",
    forward_credential: bool = False,
    clock: Callable[[], float] = time.time,
) -> tuple[JwtAuthenticator | None, list[str]]:
    """Load the keys ``cfg`` names and build the authenticator; (None, problems) when they fail."""
    keys, problems = load_keys(cfg, base_dir, section)
    if keys is None:
        return None, problems
    verifier = JwtVerifier(cfg, keys, clock=clock)
    return JwtAuthenticator(verifier, method=method, forward_credential=forward_credential), []
