"""Stage 1 of the request path: who is calling.

    trusted header (only from a trusted proxy)
      -> API key
      -> Authorization: Bearer
           JWT:     the gateway's JWT, else the CRM's JWT (if configured)
           not JWT: a CRM personal access token (if enabled)

The first credential present decides: a bad one stops here (401 with its reason) instead of falling
through to a weaker one; no credential at all is ``unauthenticated``. A verified user whose status
is not ``active`` is refused with ``user-inactive`` (403), whatever the credential: an off-boarded
user holding a still-valid token is locked out at the next request.

The request path calls :meth:`IdentityStage.identify_async`: when a JWT needs signing keys that
must be fetched first (:mod:`gateway.identity.remote_keys`), it awaits the fetch (in a worker
thread) and verifies once more. :meth:`IdentityStage.identify` is the synchronous form for callers
that cannot wait (the console's and the alerts API's login checks): the same answers, except that
a token needing a fetch is refused (401) while the fetch runs for the next request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gateway.errors import Forbidden, Unauthenticated
from gateway.identity.api_key import ApiKeyAuthenticator
from gateway.identity.base import Authenticator, bearer_token, looks_like_jwt
from gateway.identity.config import IdentityConfig
from gateway.identity.crm_credential import CrmCredentialAuthenticator
from gateway.identity.directory import Directory
from gateway.identity.jwt_bearer import JwtAuthenticator, build_jwt
from gateway.identity.keys import IdentityConfigError
from gateway.identity.remote_keys import KeysNeeded, RemoteKeySet
from gateway.identity.trusted_header import TrustedHeaderAuthenticator
from gateway.model import Identity

# Every header the stage may read with the default names (lower-case). The proxy strips these from
# what goes upstream; ``authorization`` is put back unchanged when ``identity.forward_credential``.
# With custom header names, use ``IdentityStage.identity_headers``.
IDENTITY_HEADERS: frozenset[str] = frozenset({"authorization", "x-api-key", "x-authenticated-user"})

# Failures that mean the key matched and the token is still wrong: more telling than a bad signature.
_KEY_MATCHED = frozenset({"token-expired", "token-issuer", "token-audience", "claim-mismatch"})


class InactiveUser(Forbidden):
    """403 ``user-inactive``: a verified user who is not active. Carries who was refused, which
    belongs in the audit line (the pipeline reads ``identity`` from the refusal)."""

    def __init__(self, identity: Identity):
        super().__init__("user-inactive", f"user {identity.user.id!r} is {identity.user.status}")
        self.identity = identity


class BearerAuthenticator:
    """``Authorization: Bearer``: gateway JWT, else CRM JWT, else CRM personal access token."""

    name = "bearer"

    def __init__(self, jwt: JwtAuthenticator | None, crm: CrmCredentialAuthenticator | None):
        self.jwt_chain = [a for a in (jwt, crm.jwt if crm else None) if a is not None]
        self.crm = crm

    def authenticate(self, headers: Mapping[str, str], peer_trusted: bool, directory: Directory) -> Identity | None:
        token = bearer_token(headers)
        if token is None:
            return None
        if not looks_like_jwt(token):
            if self.crm is not None and self.crm.personal_tokens:
                return self.crm.identify_token(token, directory)
            raise Unauthenticated("token-invalid", "bearer token is not a JWT")
        if not self.jwt_chain:
            raise Unauthenticated("token-invalid", "JWTs are not accepted")
        for auth in self.jwt_chain:  # hot path: a token one of them verified before
            claims = auth.verifier.cached(token)
            if claims is not None:
                return auth.identity_for(token, claims, directory)
        errors: list[Unauthenticated] = []
        for auth in self.jwt_chain:
            try:
                claims = auth.verifier.verify(token)
            except Unauthenticated as exc:
                errors.append(exc)
                continue
            return auth.identity_for(token, claims, directory)
        # The gateway's own error, unless another issuer's key matched and said what is wrong
        # (an expired CRM JWT should say token-expired, not token-invalid).
        for error in errors:
            if error.reason in _KEY_MATCHED:
                raise error
        for error in errors:  # an issuer still fetching its keys may yet accept the token
            if isinstance(error, KeysNeeded):
                raise error
        raise errors[0]


class IdentityStage:
    """Runs the authenticators in order; built once per settings load (it owns the token caches)."""

    def __init__(
        self,
        config: IdentityConfig,
        base_dir: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        key_clock: Callable[[], float] = time.monotonic,
    ):
        base = Path(base_dir)
        problems: list[str] = []
        chain: list[Authenticator] = []
        headers: set[str] = set()
        th = config.trusted_header
        if th is not None and th.enabled:
            chain.append(TrustedHeaderAuthenticator(th.header, th.mfa_header, th.user_attribute))
            headers |= {h.lower() for h in (th.header, th.mfa_header) if h}
        if config.api_key is not None and config.api_key.enabled:
            chain.append(ApiKeyAuthenticator(config.api_key.header))
            headers.add(config.api_key.header.lower())
        gateway_jwt = crm = None
        if config.jwt is not None and config.jwt.enabled:
            gateway_jwt, errs = build_jwt(config.jwt, base, "identity.jwt", clock=clock, key_clock=key_clock)
            problems += errs
        cc = config.crm_credential
        if cc is not None and cc.enabled:
            crm_jwt = None
            if cc.jwt is not None:
                crm_jwt, errs = build_jwt(
                    cc.jwt,
                    base,
                    "identity.crm_credential.jwt",
                    method="crm_jwt",
                    forward_credential=True,
                    clock=clock,
                    key_clock=key_clock,
                )
                problems += errs
            crm = CrmCredentialAuthenticator(crm_jwt, cc.personal_tokens)
        if gateway_jwt is not None or crm is not None:
            chain.append(BearerAuthenticator(gateway_jwt, crm))
            headers.add("authorization")
        if problems:
            raise IdentityConfigError(problems)
        self._chain = tuple(chain)
        self.methods = tuple(a.name for a in chain)
        self.identity_headers: frozenset[str] = frozenset(headers)
        jwts = (gateway_jwt, crm.jwt if crm is not None else None)
        self.key_sets: tuple[RemoteKeySet, ...] = tuple(
            a.verifier.remote for a in jwts if a is not None and a.verifier.remote is not None
        )

    async def identify_async(self, headers: Mapping[str, str], peer_trusted: bool, directory: Directory) -> Identity:
        """:meth:`identify`, waiting (off the event loop) for signing keys that are being fetched."""
        try:
            return self.identify(headers, peer_trusted, directory)
        except KeysNeeded as needed:
            pending = needed.pending
        await asyncio.wrap_future(pending)  # True or False: either way, verify once more
        try:
            return self.identify(headers, peer_trusted, directory)
        except KeysNeeded as again:  # rate-limited or still failing: refuse, do not loop
            raise again.refusal from None

    def health(self) -> dict[str, Any]:
        """Fetched key sets (empty when none is configured) and whether any is failing."""
        sets = [k.health() for k in self.key_sets]
        failing = any(h["last_error"] for h in sets)
        return {"key_sets": sets, "degraded": ["identity-keys-unavailable"] if failing else []}

    def identify(self, headers: Mapping[str, str], peer_trusted: bool, directory: Directory) -> Identity:
        """The verified, active caller; raises Unauthenticated (401) or Forbidden (403)."""
        for auth in self._chain:
            identity = auth.authenticate(headers, peer_trusted, directory)
            if identity is not None:
                break
        else:
            raise Unauthenticated("unauthenticated", "no credential")
        if not identity.user.active:
            raise InactiveUser(identity)
        return identity


def check_identity(config: IdentityConfig, base_dir: Path | str) -> list[str]:
    """Every problem that would stop the stage from being built (for ``crmgw check``)."""
    try:
        IdentityStage(config, base_dir)
    except IdentityConfigError as exc:
        return exc.problems
    return []
