"""Factories for identity tests: the demo directory, users.yaml snippets, keys and stages."""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.identity.config import IdentityConfig
from gateway.identity.directory import Directory, load_directory
from gateway.identity.stage import IdentityStage

REPO = Path(__file__).resolve().parents[2]
USERS_YAML = REPO / "rules" / "users.yaml"


class Clock:
    """A settable clock for the token cache."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="session")
def directory() -> Directory:
    loaded, errors = load_directory(USERS_YAML, "rules/users.yaml")
    assert errors == []
    return loaded


@pytest.fixture
def load_users(tmp_path):
    """Write a users.yaml body (format line added) and load it: (directory, [str(error), ...])."""

    def load(body: str):
        path = tmp_path / "users.yaml"
        path.write_text("format: crmgw.rules/v1\n" + textwrap.dedent(body), "utf-8")
        loaded, errors = load_directory(path, "users.yaml")
        return loaded, [str(e) for e in errors]

    return load


@pytest.fixture(scope="session")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa_key2():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(private_key) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def jwks_dict(keys: dict[str, object]) -> dict:
    """A JWKS with the public halves of ``{kid: private_key}``."""
    entries = []
    for kid, key in keys.items():
        family = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
        entries.append({**family.to_jwk(key.public_key(), as_dict=True), "kid": kid})
    return {"keys": entries}


def write_jwks(path: Path, keys: dict[str, object]) -> Path:
    """A JWKS file with the public halves of ``{kid: private_key}``."""
    path.write_text(json.dumps(jwks_dict(keys)), "utf-8")
    return path


def make_stage(config: dict, base_dir: Path, clock=None) -> IdentityStage:
    cfg = IdentityConfig.model_validate(config)
    return IdentityStage(cfg, base_dir, clock=clock) if clock else IdentityStage(cfg, base_dir)


def sign(claims: dict, key, alg: str, headers: dict | None = None) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def sign_as_democrm(claims: dict) -> str:
    """HS256 with the demo CRM's short public secret (PyJWT's length warning silenced here only)."""
    from gateway.identity.devkeys import DEMOCRM_JWT_SECRET

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(claims, DEMOCRM_JWT_SECRET, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
