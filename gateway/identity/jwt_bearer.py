"""``Authorization: Bearer <jwt>``: the organisation's SSO tokens, verified by the gateway.

The same class verifies the CRM's own JWTs for :mod:`gateway.identity.crm_credential`; only the
method name and whether the credential is forwarded to the CRM differ. Each names its user with
``user_claim`` (``sub`` by default; a CRM's tokens may say ``user_email`` or ``user_id``), matched
against the directory attribute ``user_attribute`` (``id``, ``email`` or a custom attribute).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from gateway.identity.base import bearer_token, looks_like_jwt, match_user, mfa_from_amr
from gateway.identity.claims import user_name
from gateway.identity.config import JwtKeys
from gateway.identity.directory import Directory
from gateway.identity.keys import load_keys
from gateway.identity.remote_keys import RemoteKeySet
from gateway.identity.verifier import Claims, JwtVerifier
from gateway.model import Identity

IDENTITY_CACHE_SIZE = 4096


class JwtAuthenticator:
    name = "jwt"

    def __init__(self, verifier: JwtVerifier, *, method: str = "jwt", forward_credential: bool = False):
        self.verifier = verifier
        self.method = method
        self.forward_credential = forward_credential
        # token -> (claims, directory, identity): the identity built from these very claims (the
        # verifier's cache vouched for them again) and this very directory (immutable, swapped
        # whole on reload), so the user is still the one the current directory names.
        self._identities: dict[str, tuple[Claims, Directory, Identity]] = {}

    def authenticate(self, headers: Mapping[str, str], peer_trusted: bool, directory: Directory) -> Identity | None:
        token = bearer_token(headers)
        if token is None or not looks_like_jwt(token):
            return None
        return self.to_identity(self.verifier.verify(token), directory)

    def identity_for(self, token: str, claims: Claims, directory: Directory) -> Identity:
        """:meth:`to_identity`, remembered for a token whose claims and directory are unchanged."""
        found = self._identities.get(token)
        if found is not None and found[0] is claims and found[1] is directory:
            return found[2]
        identity = self.to_identity(claims, directory)
        if len(self._identities) >= IDENTITY_CACHE_SIZE:
            self._identities.clear()  # a crude bound: the verifier's own cache is the LRU
        self._identities[token] = (claims, directory, identity)
        return identity

    def to_identity(self, claims: Claims, directory: Directory) -> Identity:
        """Verified claims -> the directory user they name, looked up in ``directory`` (identity_for
        remembers the answer only for that very directory snapshot)."""
        verifier = self.verifier
        user = match_user(directory, verifier.user_attribute, user_name(claims, verifier.user_claim))
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
    key_clock: Callable[[], float] = time.monotonic,
) -> tuple[JwtAuthenticator | None, list[str]]:
    """Load the keys ``cfg`` names and build the authenticator; (None, problems) when they fail.

    Fetched keys (``jwks_url`` / ``oidc_discovery``) are not fetched here: building the stage must
    not wait on the network (nor on a server running on the same event loop); the first token
    that needs them starts the fetch.
    """
    keys, problems = load_keys(cfg, base_dir, section)
    if keys is None:
        return None, problems
    remote = RemoteKeySet(cfg, section, clock=key_clock) if cfg.remote else None
    verifier = JwtVerifier(cfg, keys, clock=clock, remote=remote)
    return JwtAuthenticator(verifier, method=method, forward_credential=forward_credential), []
