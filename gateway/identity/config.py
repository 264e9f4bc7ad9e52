"""Identity settings: which credentials the gateway accepts and how it verifies them.

    identity:
      jwt:                          # the organisation's SSO tokens: Authorization: Bearer <jwt>
        algorithms: [RS256]
        jwks_file: keys/sso-jwks.json   # or public_keys: [keys/sso.pem]; HS* take secret/secret_env/secret_file
        issuer: https://sso.example.com
        audience: crm
        leeway_seconds: 30
        user_claim: sub
      api_key: {header: X-API-Key}
      trusted_header: {header: X-Authenticated-User}   # honoured only from trusted proxies
      crm_credential:                # the CRM's own login, forwarded unchanged
        jwt: {algorithms: [HS256], secret_env: DEMOCRM_JWT_SECRET, issuer: democrm}
        personal_tokens: true

Ambiguity is an error: an algorithm listed without a key of its kind, a key configured without an
algorithm that uses it, ``none`` in any spelling, a secret that is really a PEM key (the classic
HS/RS key-confusion setup). Structural checks run when the settings are validated; files and
environment variables are checked by :func:`gateway.identity.keys.load_keys` when the stage is built,
with paths resolved against the settings file's folder.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
ALGORITHMS = HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _header(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError(f"not a valid header name: {value!r}")
    return value


class JwtKeys(_Strict):
    """How to verify one issuer's JWTs: allowed algorithms, keys, and the claims to check."""

    algorithms: list[str]
    secret: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    public_keys: list[str] = []  # PEM files (public keys only)
    jwks_file: str | None = None  # a JSON Web Key Set; tokens name their key with ``kid``
    issuer: str | None = None
    audience: str | list[str] | None = None
    leeway_seconds: float = Field(30.0, ge=0, le=300)
    user_claim: str = "sub"
    cache_size: int = Field(10_000, ge=0, le=1_000_000)

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
    def _keys_match_algorithms(self):
        secrets = [n for n in ("secret", "secret_env", "secret_file") if getattr(self, n) is not None]
        if len(secrets) > 1:
            raise ValueError("give at most one of 'secret', 'secret_env', 'secret_file'")
        has_public = bool(self.public_keys) or self.jwks_file is not None
        hmac = sorted(HMAC_ALGORITHMS.intersection(self.algorithms))
        asym = sorted(ASYMMETRIC_ALGORITHMS.intersection(self.algorithms))
        if hmac and not secrets:
            raise ValueError(f"{hmac[0]} listed but no secret configured (secret, secret_env or secret_file)")
        if asym and not has_public:
            raise ValueError(f"{asym[0]} listed but no public key configured (public_keys or jwks_file)")
        if secrets and not hmac:
            raise ValueError("a secret is configured but no HS* algorithm is listed")
        if has_public and not asym:
            raise ValueError("public keys are configured but no RS*/PS*/ES*/EdDSA algorithm is listed")
        if self.secret is not None:
            if not self.secret:
                raise ValueError("secret must not be empty")
            if "-----BEGIN" in self.secret:
                raise ValueError("secret looks like a PEM key: HS* take a shared secret; put public keys in 'public_keys'")
        if not self.user_claim:
            raise ValueError("user_claim must not be empty")
        return self


class JwtConfig(JwtKeys):
    enabled: bool = True


class ApiKeyConfig(_Strict):
    enabled: bool = True
    header: str = "X-API-Key"

    @field_validator("header")
    @classmethod
    def _check_header(cls, value: str) -> str:
        return _header(value)


class TrustedHeaderConfig(_Strict):
    """An SSO proxy in front of the gateway vouches for the user; honoured only from trusted peers."""

    enabled: bool = True
    header: str = "X-Authenticated-User"
    # Optional: a header the proxy sets to ``true`` when the user passed MFA. Off by default: a proxy
    # that does not know this header might pass a client's copy through.
    mfa_header: str | None = None

    @field_validator("header", "mfa_header")
    @classmethod
    def _headers(cls, value: str | None) -> str | None:
        return None if value is None else _header(value)


class CrmCredentialConfig(_Strict):
    """The CRM's own login: its JWTs (when ``jwt`` is set) and its personal access tokens."""

    enabled: bool = True
    jwt: JwtKeys | None = None
    personal_tokens: bool = True

    @model_validator(mode="after")
    def _something(self):
        if self.enabled and self.jwt is None and not self.personal_tokens:
            raise ValueError("crm_credential accepts nothing: configure 'jwt' or set personal_tokens: true")
        return self


class IdentityConfig(_Strict):
    jwt: JwtConfig | None = None
    api_key: ApiKeyConfig | None = None
    trusted_header: TrustedHeaderConfig | None = None
    crm_credential: CrmCredentialConfig | None = None

    @model_validator(mode="after")
    def _coherent(self):
        if not any(s is not None and s.enabled for s in self.sections()):
            raise ValueError("no authenticator is enabled: nobody could log in")
        headers = ["authorization"] if self._on(self.jwt) or self._on(self.crm_credential) else []
        if self._on(self.api_key):
            headers.append(self.api_key.header.lower())
        if self._on(self.trusted_header):
            headers.append(self.trusted_header.header.lower())
            if self.trusted_header.mfa_header:
                headers.append(self.trusted_header.mfa_header.lower())
        duplicates = sorted({h for h in headers if headers.count(h) > 1})
        if duplicates:
            raise ValueError(f"header {duplicates[0]!r} is used by two authenticators")
        return self

    def sections(self) -> tuple:
        return (self.jwt, self.api_key, self.trusted_header, self.crm_credential)

    @staticmethod
    def _on(section) -> bool:
        return section is not None and section.enabled
