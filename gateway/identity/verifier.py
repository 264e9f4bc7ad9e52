"""JWT verification with an explicit algorithm allow-list and a per-token cache of verified claims.

The token's header picks the algorithm only from the allow-list, and the algorithm picks the kind
of key: HS* the shared secret, everything else a public key that fits (RSA for RS/PS, the right
curve for ES, Ed25519/Ed448 for EdDSA). ``none`` is never in the list, in any spelling.

Signature checks are the expensive part of authentication, so verified claims are cached per token
string (bounded LRU) until the token's ``exp`` plus leeway; the cache stores claims only, never the
user, so the directory (and off-boarding) is consulted on every request. With fetched keys
(:mod:`gateway.identity.remote_keys`) each entry also remembers the key set's revision: once a
refresh withdraws a key, or the set goes stale, cached tokens are verified again.

After the signature: the time claims are JSON numbers, the user claim is present
(:func:`~gateway.identity.claims.user_name`) and the ``require``d claims hold
(:func:`~gateway.identity.claims.check_required`, 401 ``claim-mismatch``).
"""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jwt
from jwt.types import Options

from gateway.errors import Unauthenticated
from gateway.identity.claims import check_required, user_name
from gateway.identity.config import HMAC_ALGORITHMS, JwtKeys
from gateway.identity.keys import JwkEntry, KeyMaterial, key_fits
from gateway.identity.remote_keys import RemoteKeySet

Claims = Mapping[str, Any]


def _reason(exc: jwt.PyJWTError) -> str:
    """The stable client-facing reason for a PyJWT failure."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token-expired"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "token-issuer"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "token-audience"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return {"iss": "token-issuer", "aud": "token-audience"}.get(exc.claim, "token-invalid")
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "token-algorithm"
    return "token-invalid"


_TIME_CLAIMS = ("exp", "nbf", "iat")


def _numeric_date(value: Any) -> bool:
    return type(value) in (int, float) and value == value and abs(value) != float("inf")


class JwtVerifier:
    """Verifies one issuer's JWTs; ``verify(token)`` returns the claims or raises Unauthenticated."""

    def __init__(
        self,
        cfg: JwtKeys,
        keys: KeyMaterial,
        *,
        clock: Callable[[], float] = time.time,
        remote: RemoteKeySet | None = None,
    ):
        self.algorithms = frozenset(cfg.algorithms)
        self.issuer = cfg.issuer
        self.audience = cfg.audience
        self.leeway = cfg.leeway_seconds
        self.user_claim = cfg.user_claim
        self.user_attribute = cfg.user_attribute
        self.require = dict(cfg.require)
        self.remote = remote
        self._keys = keys
        self._clock = clock
        self._cache: OrderedDict[str, tuple[Claims, float, int]] = OrderedDict()
        self._cache_size = cfg.cache_size
        self._options: Options = {
            "require": ["exp"],
            "verify_aud": cfg.audience is not None,
            "verify_iss": cfg.issuer is not None,
        }

    def cached(self, token: str) -> Claims | None:
        """Claims verified earlier for this very token; ``token-expired`` once its exp has passed."""
        entry = self._cache.get(token)
        if entry is None:
            return None
        claims, valid_until, generation = entry
        if generation != self._generation():  # keys withdrawn or stale since: verify again
            del self._cache[token]
            return None
        if self._clock() >= valid_until:
            del self._cache[token]
            raise Unauthenticated("token-expired", "cached token reached its exp")
        self._cache.move_to_end(token)
        return claims

    def verify(self, token: str) -> Claims:
        claims = self.cached(token)
        if claims is not None:
            return claims
        generation = self._generation()  # before verifying: a refresh meanwhile must not be missed
        claims = self._verify(token)
        valid_until = float(claims["exp"]) + self.leeway
        if self._clock() >= valid_until:  # our clock and PyJWT's may differ; ours decides the cache
            raise Unauthenticated("token-expired", "token reached its exp")
        if self._cache_size and generation is not None:  # None: no fresh key set to vouch for it
            self._cache[token] = (claims, valid_until, generation)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return claims

    def _verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("token-invalid", "malformed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise Unauthenticated("token-algorithm", f"algorithm {alg!r} is not allowed")
        for key in self._keys_for(alg, header.get("kid")):
            try:
                with warnings.catch_warnings():
                    # Short HMAC secrets (the demo CRM's) are a configuration concern, not a
                    # per-request one; the warning must not turn into an error on the hot path.
                    warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
                    claims = jwt.decode(
                        token,
                        key,
                        algorithms=[alg],
                        issuer=self.issuer,
                        audience=self.audience,
                        leeway=self.leeway,
                        options=self._options,
                    )
            except jwt.InvalidSignatureError:
                continue  # try the next key of the same kind (key rotation)
            except jwt.PyJWTError as exc:
                raise Unauthenticated(_reason(exc), str(exc)) from None
            bad = [c for c in _TIME_CLAIMS if c in claims and not _numeric_date(claims[c])]
            if bad:
                # PyJWT runs int() on these, so "exp": "9999999999" would pass; RFC 7519 says a
                # NumericDate is a JSON number, and another reader of the token may disagree.
                raise Unauthenticated("token-invalid", f"claim {bad[0]!r} is not a NumericDate")
            user_name(claims, self.user_claim)
            check_required(claims, self.require)
            return MappingProxyType(claims)
        raise Unauthenticated("token-invalid", "signature verification failed")

    def _keys_for(self, alg: str, kid: Any) -> list[Any]:
        """The keys allowed to verify a token signed with ``alg`` (and naming ``kid``)."""
        if alg in HMAC_ALGORITHMS:
            return [self._keys.secret] if self._keys.secret is not None else []
        jwks = self._jwks()
        if kid is not None and jwks:
            entry = jwks.get(kid) if isinstance(kid, str) else None
            if entry is None:
                if self.remote is not None and isinstance(kid, str):
                    raise self.remote.unknown_kid(kid)  # one refresh, rate-limited
                raise Unauthenticated("token-invalid", f"unknown kid {kid!r}")
            if entry.alg not in (None, alg) or not key_fits(alg, entry.key):
                raise Unauthenticated("token-invalid", f"key {kid!r} is not for {alg}")
            return [entry.key]
        keys = [k for k in self._keys.public_keys if key_fits(alg, k)]
        keys += [e.key for e in jwks.values() if e.alg in (None, alg) and key_fits(alg, e.key)]
        return keys

    def _jwks(self) -> Mapping[str, JwkEntry]:
        return self.remote.entries() if self.remote is not None else self._keys.jwks

    def _generation(self) -> int | None:
        return 0 if self.remote is None else self.remote.generation()
