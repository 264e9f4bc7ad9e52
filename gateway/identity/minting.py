"""``crmgw token --config gateway.yaml``: a token signed with the keys a gateway's settings name,
checked by that gateway's own verifier before anyone sees it.

Which key signs (``identity.jwt`` of the settings):

    HS256/384/512   the section's shared secret (``secret``, ``secret_env`` or ``secret_file``): who
                    can read the settings can mint tokens, as whoever holds a shared secret can.
    RS/PS/ES/EdDSA  ``--private-key FILE`` (unencrypted PEM). The settings hold public keys only
                    (a private key there is refused at start-up) and the identity provider's
                    private key never belongs in them; ``--kid`` names the key in the JWKS.

The claims follow the section: the user is named in ``user_claim`` with the directory attribute
``user_attribute`` (a user without it cannot get a token), ``iss``/``aud`` as configured, and
each ``require``d claim with its (first) allowed value. A token the gateway would refuse (a key
it does not know, a user it cannot match) is not printed.
"""

from __future__ import annotations

import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from gateway.errors import Unauthenticated
from gateway.identity.config import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, JwtKeys
from gateway.identity.directory import Directory
from gateway.identity.jwt_bearer import JwtAuthenticator, build_jwt
from gateway.identity.keys import key_fits, load_keys
from gateway.identity.remote_keys import KeysNeeded
from gateway.model import Identity

SECTION = "identity.jwt"


class MintError(Exception):
    """No token: the message says why (exit 2: usage or settings; exit 1: the gateway would refuse)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def mint_configured(
    cfg: JwtKeys,
    base_dir: Path,
    directory: Directory,
    user_id: str,
    *,
    ttl_seconds: int = 3600,
    mfa: bool = False,
    private_key: Path | None = None,
    kid: str | None = None,
) -> str:
    """A token for ``user_id`` that the gateway configured by ``cfg`` accepts, or MintError."""
    user = directory.get(user_id)
    if user is None:
        raise MintError(f"unknown user {user_id!r}")
    name = user.attribute(cfg.user_attribute)
    if name is None:
        raise MintError(f"user {user_id!r} has no {cfg.user_attribute!r}, which {SECTION}.user_attribute names")
    key, alg = _signing_key(cfg, base_dir, private_key)
    issued = int(time.time())
    claims: dict[str, Any] = {
        cfg.user_claim: name,
        "iat": issued,
        "exp": issued + int(ttl_seconds),
        "jti": uuid.uuid4().hex,
        "amr": ["pwd", "otp", "mfa"] if mfa else ["pwd"],
    }
    claims.update({c: (v[0] if isinstance(v, list) else v) for c, v in cfg.require.items()})
    if cfg.issuer is not None:
        claims["iss"] = cfg.issuer
    if cfg.audience is not None:
        claims["aud"] = cfg.audience
    with warnings.catch_warnings():  # a short configured secret is the settings' business
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        token = jwt.encode(claims, key, algorithm=alg, headers={"kid": kid} if kid else None)
    _accepted_as(cfg, base_dir, directory, token, user_id)
    return token


def _signing_key(cfg: JwtKeys, base_dir: Path, private_key: Path | None) -> tuple[Any, str]:
    if private_key is not None:
        try:
            key = load_pem_private_key(private_key.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise MintError(f"--private-key {private_key}: not an unencrypted PEM private key ({exc})") from None
        asym = [a for a in cfg.algorithms if a in ASYMMETRIC_ALGORITHMS]
        for alg in asym:
            if key_fits(alg, key.public_key()):
                return key, alg
        raise MintError(f"--private-key {private_key}: fits none of {SECTION}.algorithms {cfg.algorithms}")
    hmac = [a for a in cfg.algorithms if a in HMAC_ALGORITHMS]
    if not hmac:
        raise MintError(
            f"{SECTION} verifies {', '.join(cfg.algorithms)} only: give --private-key FILE, the identity "
            "provider's private key (the settings hold public keys only)"
        )
    material, problems = load_keys(cfg, base_dir, SECTION)
    if material is None or material.secret is None:
        raise MintError("; ".join(problems) or f"{SECTION} has no secret")
    return material.secret, hmac[0]


def _accepted_as(cfg: JwtKeys, base_dir: Path, directory: Directory, token: str, user_id: str) -> None:
    """Verify ``token`` as the gateway would (fetching its keys if it fetches them)."""
    auth, problems = build_jwt(cfg, base_dir, SECTION)
    if auth is None:
        raise MintError("; ".join(problems))
    try:
        identity = _identify(auth, token, directory, cfg)
    except Unauthenticated as exc:
        raise MintError(f"the gateway would refuse this token: {exc.reason} ({exc.detail})", 1) from None
    if identity.user.id != user_id:  # another user carries the same attribute value
        raise MintError(f"the token would name {identity.user.id!r}, not {user_id!r}", 1)


def _identify(auth: JwtAuthenticator, token: str, directory: Directory, cfg: JwtKeys) -> Identity:
    try:
        claims = auth.verifier.verify(token)
    except KeysNeeded as needed:  # a command may block: wait for the fetch, then once more
        try:
            needed.pending.result(timeout=2 * cfg.jwks_cache.fetch_timeout_seconds + 1)
        except TimeoutError:
            pass  # verified once more below: refused as the gateway would refuse it
        try:
            claims = auth.verifier.verify(token)
        except KeysNeeded as again:
            raise again.refusal from None
    return auth.to_identity(claims, directory)
