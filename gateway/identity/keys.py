"""Key material for JWT verification, loaded once when the identity stage is built.

HS* algorithms verify only with the configured shared secret; RS*/PS*/ES*/EdDSA only with public
keys (PEM files or a JWKS). Keeping the two apart is what prevents key confusion: a public key is
never used as an HMAC secret, and a JWKS may not smuggle in a symmetric (``oct``) key. Problems are
returned as messages naming the settings key, every one of them, so start-up can refuse at once.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.identity.config import ASYMMETRIC_ALGORITHMS, JwtKeys

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
MIN_RSA_BITS = 2048


class IdentityConfigError(ValueError):
    """The identity settings cannot be put to work (missing file, unset variable, bad key)."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclasses.dataclass(frozen=True, slots=True)
class JwkEntry:
    key: PublicKey
    alg: str | None  # the JWK's own ``alg``, when it pins one


@dataclasses.dataclass(frozen=True, slots=True)
class KeyMaterial:
    secret: bytes | None = None
    public_keys: tuple[PublicKey, ...] = ()
    jwks: Mapping[str, JwkEntry] = dataclasses.field(default_factory=dict)


def key_fits(alg: str, key: Any) -> bool:
    """Whether ``key`` is the right kind of public key for algorithm ``alg``."""
    if alg.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey)
    if alg in _EC_CURVES:
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == _EC_CURVES[alg]
    if alg == "EdDSA":
        return isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey))
    return False


def resolve(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def load_keys(cfg: JwtKeys, base_dir: Path, section: str) -> tuple[KeyMaterial | None, list[str]]:
    """Read the secret and public keys ``cfg`` names; (material, []) or (None, problems)."""
    problems: list[str] = []
    secret = _load_secret(cfg, base_dir, section, problems)
    public: list[PublicKey] = []
    for i, name in enumerate(cfg.public_keys):
        key = _load_pem(resolve(base_dir, name), f"{section}.public_keys[{i}]", problems)
        if key is not None:
            public.append(key)
    jwks: dict[str, JwkEntry] = {}
    if cfg.jwks_file is not None:
        jwks = _load_jwks(resolve(base_dir, cfg.jwks_file), f"{section}.jwks_file", problems)
    asym = [a for a in cfg.algorithms if a in ASYMMETRIC_ALGORITHMS]
    for i, key in enumerate(public):
        if not any(key_fits(a, key) for a in asym):
            problems.append(f"{section}.public_keys[{i}]: key fits none of the listed algorithms {asym}")
    for kid, entry in jwks.items():
        if not any(key_fits(a, entry.key) and entry.alg in (None, a) for a in asym):
            problems.append(f"{section}.jwks_file: key {kid!r} fits none of the listed algorithms {asym}")
    if problems:
        return None, problems
    return KeyMaterial(secret, tuple(public), MappingProxyType(jwks)), []


def _load_secret(cfg: JwtKeys, base_dir: Path, section: str, problems: list[str]) -> bytes | None:
    if cfg.secret is not None:
        return cfg.secret.encode("utf-8")
    if cfg.secret_env is not None:
        value = os.environ.get(cfg.secret_env, "")
        if not value:
            problems.append(f"{section}.secret_env: environment variable {cfg.secret_env!r} is not set")
            return None
        return value.encode("utf-8")
    if cfg.secret_file is not None:
        path = resolve(base_dir, cfg.secret_file)
        data = _read(path, f"{section}.secret_file", problems)
        if data is None:
            return None
        data = data.rstrip(b"\r\n")  # editors add a final newline; it is not part of the secret
        if not data:
            problems.append(f"{section}.secret_file: file is empty: {path}")
            return None
        if b"-----BEGIN" in data:
            problems.append(f"{section}.secret_file: file holds a PEM key, not a shared secret: {path}")
            return None
        return data
    return None


def _read(path: Path, where: str, problems: list[str]) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{where}: file not found: {path}")
    except OSError as exc:
        problems.append(f"{where}: cannot read {path}: {exc.strerror or exc}")
    return None


def _check_public(key: Any, where: str, problems: list[str]) -> PublicKey | None:
    if not isinstance(
        key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)
    ):
        problems.append(f"{where}: unsupported key type {type(key).__name__}")
        return None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        problems.append(f"{where}: RSA key is {key.key_size} bits; at least {MIN_RSA_BITS} are required")
        return None
    return key


def _load_pem(path: Path, where: str, problems: list[str]) -> PublicKey | None:
    data = _read(path, where, problems)
    if data is None:
        return None
    if b"PRIVATE KEY" in data:
        problems.append(f"{where}: {path} holds a private key; configure the public key only")
        return None
    key: PublicKeyTypes
    try:
        if b"BEGIN CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = load_pem_public_key(data)
    except ValueError:
        problems.append(f"{where}: not a PEM public key or certificate: {path}")
        return None
    return _check_public(key, where, problems)


def _load_jwks(path: Path, where: str, problems: list[str]) -> dict[str, JwkEntry]:
    data = _read(path, where, problems)
    if data is None:
        return {}
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{where}: not valid JSON ({exc}): {path}")
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list) or not doc["keys"]:
        problems.append(f"{where}: a JWKS needs a non-empty 'keys' list: {path}")
        return {}
    return parse_jwks(doc["keys"], where, problems)


def parse_jwks(keys: list[Any], where: str, problems: list[str]) -> dict[str, JwkEntry]:
    """The usable public signing keys of a JWKS ``keys`` list, by kid; every other entry is left
    out with a problem. A kid given twice is left out altogether (which key would it be?).

    A file's problems stop start-up; a fetched set's are logged and its other keys used
    (:mod:`gateway.identity.remote_keys`), because an identity provider publishes keys for other
    purposes too.
    """
    out: dict[str, JwkEntry] = {}
    duplicated: set[str] = set()
    for i, jwk in enumerate(keys):
        at = f"{where}: key #{i}"
        if not isinstance(jwk, dict):
            problems.append(f"{at} is not an object")
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            problems.append(f"{at} has no 'kid'")
            continue
        if kid in out or kid in duplicated:
            problems.append(f"{at}: duplicate kid {kid!r}")
            duplicated.add(kid)
            out.pop(kid, None)
            continue
        if jwk.get("kty") == "oct":
            problems.append(f"{at} ({kid!r}) is a symmetric key; HS* algorithms use 'secret', never the JWKS")
            continue
        if "d" in jwk:
            problems.append(f"{at} ({kid!r}) holds private key material; publish public keys only")
            continue
        if jwk.get("use") not in (None, "sig"):
            problems.append(f"{at} ({kid!r}) is not a signing key (use: {jwk.get('use')!r})")
            continue
        try:
            key = jwt.PyJWK(jwk).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            problems.append(f"{at} ({kid!r}) cannot be read: {exc}")
            continue
        key = _check_public(key, f"{at} ({kid!r})", problems)
        alg = jwk.get("alg")
        if key is not None:
            out[kid] = JwkEntry(key, alg if isinstance(alg, str) else None)
    return out
