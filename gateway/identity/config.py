"""Identity settings: which credentials the gateway accepts and how it verifies them.

    identity:
      jwt:                          # the organisation's SSO tokens: Authorization: Bearer <jwt>
        algorithms: [RS256]
        issuer: https://sso.example.com
        oidc_discovery: true        # {issuer}/.well-known/openid-configuration -> jwks_uri
        # or jwks_url: https://sso.example.com/keys, jwks_file: keys/sso-jwks.json,
        # public_keys: [keys/sso.pem]; HS* take secret / secret_env / secret_file
        jwks_cache: {ttl_seconds: 300, refresh_min_interval_seconds: 30, fetch_timeout_seconds: 5}
        audience: crm
        leeway_seconds: 30
        user_claim: sub             # the claim that names the user ...
        user_attribute: id          # ... and the directory attribute it is matched with
        require: {tid: "4f1c0e5a"}  # claims that must hold exactly these values (a list: any of)
      api_key: {header: X-API-Key}
      trusted_header: {header: X-Authenticated-User, user_attribute: email}   # trusted proxies only
      crm_credential:                # the CRM's own login, forwarded unchanged
        jwt: {algorithms: [HS256], secret_env: DEMOCRM_JWT_SECRET, issuer: democrm,
              user_claim: user_id, user_attribute: crm_user_id, require: {org_id: acme}}
        personal_tokens: true

Ambiguity is an error: an algorithm listed without a key of its kind, a key configured without an
algorithm that uses it, ``none`` in any spelling, a secret that is really a PEM key (the classic
HS/RS key-confusion setup). Structural checks run when the settings are validated; files and
environment variables are checked by :func:`gateway.identity.keys.load_keys` when the stage is built,
with paths resolved against the settings file's folder.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator

from gateway.identity.directory import BUILTIN_ATTRIBUTES
from gateway.rulefile import StrictModel

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
ALGORITHMS = HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Registered claims with a setting of their own (issuer, audience) or checked by the verifier.
_RESERVED_CLAIMS = frozenset({"exp", "nbf", "iat", "iss", "aud"})
ClaimValue = StrictStr | StrictInt | StrictBool


def _header(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError(f"not a valid header name: {value!r}")
    return value


def user_attribute(value: str) -> str:
    """The directory attribute a credential's user name is matched with: ``id``, ``email`` or a
    custom attribute. The other built-ins (team, region, ...) are shared by many users by design."""
    if value == "id" or value == "email":
        return value
    if not _ATTRIBUTE_NAME.fullmatch(value):
        raise ValueError(f"not an attribute name: {value!r}")
    if value in BUILTIN_ATTRIBUTES:
        raise ValueError(f"user_attribute {value!r} does not identify one user; use id, email or a custom attribute")
    return value


def remote_url(value: str, what: str) -> str:
    """Keys fetched over plain HTTP could be swapped by anyone on the path: https only, except on
    loopback (a local sidecar, the tests)."""
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if loopback:
            return value
    raise ValueError(f"{what} must be an https:// URL (http:// only on loopback), got {value!r}")


class JwksCache(StrictModel):
    """How a fetched key set (``jwks_url`` / ``oidc_discovery``) is kept and refreshed."""

    # After this the set is fetched again; if that fails the keys are dropped (fail closed).
    ttl_seconds: float = Field(300.0, gt=0, le=86_400)
    # At most one fetch per interval (an unknown ``kid`` or a failing endpoint must not turn
    # every request into a fetch).
    refresh_min_interval_seconds: float = Field(30.0, ge=0, le=3_600)
    fetch_timeout_seconds: float = Field(5.0, gt=0, le=60)


class JwtKeys(StrictModel):
    """How to verify one issuer's JWTs: allowed algorithms, keys, and the claims to check."""

    algorithms: list[str]
    secret: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    public_keys: list[str] = Field(default_factory=list)  # PEM files (public keys only)
    jwks_file: str | None = None  # a JSON Web Key Set; tokens name their key with ``kid``
    jwks_url: str | None = None  # the same, fetched (gateway.identity.remote_keys)
    oidc_discovery: bool = False  # jwks_uri from {issuer}/.well-known/openid-configuration
    jwks_cache: JwksCache = JwksCache()
    issuer: str | None = None
    audience: str | list[str] | None = None
    leeway_seconds: float = Field(30.0, ge=0, le=300)
    user_claim: str = "sub"
    user_attribute: str = "id"
    require: dict[str, ClaimValue | list[ClaimValue]] = Field(default_factory=dict)
    cache_size: int = Field(10_000, ge=0, le=1_000_000)

    @property
    def remote(self) -> bool:
        return self.jwks_url is not None or self.oidc_discovery

    @field_validator("user_attribute")
    @classmethod
    def _user_attribute(cls, value: str) -> str:
        return user_attribute(value)

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        return None if value is None else remote_url(value, "jwks_url")

    @field_validator("require")
    @classmethod
    def _require(cls, value: dict[str, ClaimValue | list[ClaimValue]]) -> dict[str, ClaimValue | list[ClaimValue]]:
        for claim, expected in value.items():
            if not claim:
                raise ValueError("require: claim names must not be empty")
            if claim in _RESERVED_CLAIMS:
                raise ValueError(f"require: {claim!r} is checked by its own setting (issuer, audience, ...)")
            if isinstance(expected, list) and not expected:
                raise ValueError(f"require: {claim!r} lists no value")
        return value

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one algorithm")
        for alg in value:
            if alg.strip().lower() == "none":
                raise ValueError("algorithm 'none' is never allowed")
            if alg not in ALGORITHMS:
                raise ValueError(f"unknown algorithm {alg!r}; use one of {', '.join(sorted(ALGORITHMS))}")
        return value

    @model_validator(mode="after")
    def _keys_match_algorithms(self) -> Self:
        secrets = [n for n in ("secret", "secret_env", "secret_file") if getattr(self, n) is not None]
        if len(secrets) > 1:
            raise ValueError("give at most one of 'secret', 'secret_env', 'secret_file'")
        has_public = bool(self.public_keys) or self.jwks_file is not None or self.remote
        if self.jwks_url is not None and self.oidc_discovery:
            raise ValueError("give either 'jwks_url' or 'oidc_discovery', not both")
        if self.remote and (self.public_keys or self.jwks_file is not None):
            raise ValueError("fetched keys (jwks_url / oidc_discovery) exclude 'public_keys' and 'jwks_file'")
        if self.oidc_discovery:
            if self.issuer is None:
                raise ValueError("oidc_discovery needs 'issuer' (the discovery document lives under it)")
            remote_url(self.issuer, "issuer (for oidc_discovery)")
        hmac = sorted(HMAC_ALGORITHMS.intersection(self.algorithms))
        asym = sorted(ASYMMETRIC_ALGORITHMS.intersection(self.algorithms))
        if hmac and not secrets:
            raise ValueError(f"{hmac[0]} listed but no secret configured (secret, secret_env or secret_file)")
        if asym and not has_public:
            raise ValueError(
                f"{asym[0]} listed but no public key configured (public_keys, jwks_file, jwks_url or oidc_discovery)"
            )
        if secrets and not hmac:
            raise ValueError("a secret is configured but no HS* algorithm is listed")
        if has_public and not asym:
            raise ValueError("public keys are configured but no RS*/PS*/ES*/EdDSA algorithm is listed")
        if self.secret is not None:
            if not self.secret:
                raise ValueError("secret must not be empty")
            if "-----BEGIN" in self.secret:
                raise ValueError(
                    "secret looks like a PEM key: HS* take a shared secret; put public keys in 'public_keys'"
                )
        if not self.user_claim:
            raise ValueError("user_claim must not be empty")
        return self


class JwtConfig(JwtKeys):
    enabled: bool = True


class ApiKeyConfig(StrictModel):
    enabled: bool = True
    header: str = "X-API-Key"

    @field_validator("header")
    @classmethod
    def _check_header(cls, value: str) -> str:
        return _header(value)


class TrustedHeaderConfig(StrictModel):
    """An SSO proxy in front of the gateway vouches for the user; honoured only from trusted peers."""

    enabled: bool = True
    header: str = "X-Authenticated-User"
    user_attribute: str = "id"  # the directory attribute the header's value is matched with
    # Optional: a header the proxy sets to ``true`` when the user passed MFA. Off by default: a proxy
    # that does not know this header might pass a client's copy through.
    mfa_header: str | None = None

    @field_validator("header", "mfa_header")
    @classmethod
    def _headers(cls, value: str | None) -> str | None:
        return None if value is None else _header(value)

    @field_validator("user_attribute")
    @classmethod
    def _user_attribute(cls, value: str) -> str:
        return user_attribute(value)


class CrmCredentialConfig(StrictModel):
    """The CRM's own login: its JWTs (when ``jwt`` is set) and its personal access tokens."""

    enabled: bool = True
    jwt: JwtKeys | None = None
    personal_tokens: bool = True

    @model_validator(mode="after")
    def _something(self) -> CrmCredentialConfig:
        if self.enabled and self.jwt is None and not self.personal_tokens:
            raise ValueError("crm_credential accepts nothing: configure 'jwt' or set personal_tokens: true")
        return self


# One way of logging in (a section of ``identity:``); each can be switched off with ``enabled``.
Authenticator = JwtConfig | ApiKeyConfig | TrustedHeaderConfig | CrmCredentialConfig


class IdentityConfig(StrictModel):
    jwt: JwtConfig | None = None
    api_key: ApiKeyConfig | None = None
    trusted_header: TrustedHeaderConfig | None = None
    crm_credential: CrmCredentialConfig | None = None

    @model_validator(mode="after")
    def _coherent(self) -> IdentityConfig:
        if not any(s is not None and s.enabled for s in self.sections()):
            raise ValueError("no authenticator is enabled: nobody could log in")
        headers = ["authorization"] if self._on(self.jwt) or self._on(self.crm_credential) else []
        if self.api_key is not None and self.api_key.enabled:
            headers.append(self.api_key.header.lower())
        if self.trusted_header is not None and self.trusted_header.enabled:
            headers.append(self.trusted_header.header.lower())
            if self.trusted_header.mfa_header:
                headers.append(self.trusted_header.mfa_header.lower())
        duplicates = sorted({h for h in headers if headers.count(h) > 1})
        if duplicates:
            raise ValueError(f"header {duplicates[0]!r} is used by two authenticators")
        return self

    def sections(self) -> tuple[Authenticator | None, ...]:
        return (self.jwt, self.api_key, self.trusted_header, self.crm_credential)

    @staticmethod
    def _on(section: Authenticator | None) -> bool:
        return section is not None and section.enabled
