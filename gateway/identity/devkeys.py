"""Development-only keys and a token minter for ``crmgw token``, the demo and the tests.

NOT FOR PRODUCTION: the secrets below are public. A deployment configures its own SSO keys in the
settings file; nothing in the gateway falls back to these. ``crmgw token`` says on stderr when it
signs with them; ``crmgw token --config`` signs with the configured keys (:mod:`gateway.identity.minting`).
"""

from __future__ import annotations

import time
import uuid
import warnings

import jwt

from gateway.identity.config import (
    ApiKeyConfig,
    CrmCredentialConfig,
    IdentityConfig,
    JwtConfig,
    JwtKeys,
    TrustedHeaderConfig,
)

DEV_JWT_SECRET = "crmgw-dev-secret-NOT-FOR-PRODUCTION"
DEV_ISSUER = "crmgw-dev"
DEV_AUDIENCE = "crm"
DEMOCRM_JWT_SECRET = "democrm-dev-secret"  # the demo CRM's own login tokens (democrm/)
DEMOCRM_ISSUER = "democrm"

DEV_IDENTITY_CONFIG = IdentityConfig(
    jwt=JwtConfig(algorithms=["HS256"], secret=DEV_JWT_SECRET, issuer=DEV_ISSUER, audience=DEV_AUDIENCE),
    api_key=ApiKeyConfig(),
    trusted_header=TrustedHeaderConfig(),
    crm_credential=CrmCredentialConfig(
        jwt=JwtKeys(algorithms=["HS256"], secret=DEMOCRM_JWT_SECRET, issuer=DEMOCRM_ISSUER),
        personal_tokens=True,
    ),
)


def mint_token(
    user_id: str,
    *,
    ttl_seconds: int = 3600,
    mfa: bool = False,
    secret: str = DEV_JWT_SECRET,
    issuer: str | None = DEV_ISSUER,
    audience: str | None = DEV_AUDIENCE,
    now: float | None = None,
) -> str:
    """An HS256 gateway token for ``user_id``; ``mfa`` adds ``amr: [pwd, otp, mfa]``."""
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": user_id,
        "iat": issued,
        "exp": issued + int(ttl_seconds),
        "jti": uuid.uuid4().hex,
        "amr": ["pwd", "otp", "mfa"] if mfa else ["pwd"],
    }
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    with warnings.catch_warnings():  # short demo secrets are fine for a demo
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS256")


def mint_crm_token(user_id: str, *, ttl_seconds: int = 3600, now: float | None = None) -> str:
    """A token like the demo CRM's ``POST /api/login`` issues (HS256, iss ``democrm``)."""
    return mint_token(
        user_id,
        ttl_seconds=ttl_seconds,
        secret=DEMOCRM_JWT_SECRET,
        issuer=DEMOCRM_ISSUER,
        audience=None,
        now=now,
    )
