"""``crmgw token``: the development key says so; ``--config`` signs with a gateway's own keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from gateway.cli import build_parser, main
from gateway.identity.devkeys import DEV_IDENTITY_CONFIG
from gateway.identity.stage import IdentityStage
from gateway.settings import load_settings
from tests.conftest import RULES

from .conftest import bearer, write_jwks
from .idp import IdentityProvider


def write_settings(tmp_path: Path, jwt_section: dict) -> Path:
    path = tmp_path / "gateway.yaml"
    data = {
        "upstream": {"url": "http://127.0.0.1:9"},
        "rules_dir": str(RULES),
        "audit": {"path": str(tmp_path / "audit.log")},
        "identity": {"jwt": jwt_section, "api_key": {}},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def private_pem(tmp_path: Path, key, name: str = "idp-private.pem") -> Path:
    path = tmp_path / name
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def token_command(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["token", *argv])
    out, err = capsys.readouterr()
    return code, out.strip(), err


def accepted_by(settings_path: Path, token: str, directory) -> str:
    """The user the gateway configured by ``settings_path`` identifies (synchronous: file keys)."""
    settings, errors = load_settings(settings_path)
    assert settings is not None, errors
    stage = IdentityStage(settings.identity, settings.base_dir)
    return stage.identify(bearer(token), False, directory).user.id


def test_help_says_the_default_key_is_for_the_demo_only():
    parser = build_parser()
    token = parser._subparsers._group_actions[0].choices["token"]
    text = " ".join(token.format_help().split())
    assert "built-in DEVELOPMENT key" in text and "for the demo and the tests only" in text
    assert "--private-key FILE" in text


def test_without_config_it_says_development_key_on_stderr(capsys, directory):
    code, out, err = token_command(capsys, "alice", "--rules", str(RULES))
    assert code == 0
    assert "DEVELOPMENT key" in err and "demo only" in err
    assert IdentityStage(DEV_IDENTITY_CONFIG, ".").identify(bearer(out), False, directory).user.id == "alice"


def test_config_with_a_shared_secret_follows_the_sections_claims(tmp_path, capsys, directory):
    (tmp_path / "sso.secret").write_text("s" * 40 + "\n")
    settings = write_settings(
        tmp_path,
        {
            "algorithms": ["HS256"],
            "secret_file": "sso.secret",
            "issuer": "https://sso.example.com",
            "audience": "crm",
            "user_claim": "email",
            "user_attribute": "email",
            "require": {"tid": ["t1", "t2"]},
        },
    )
    code, out, err = token_command(capsys, "bob", "--config", str(settings), "--mfa")
    assert code == 0, err
    assert "DEVELOPMENT" not in err and f"signed for identity.jwt of {settings}" in err
    claims = jwt.decode(out, options={"verify_signature": False})
    assert (claims["email"], claims["tid"], claims["iss"], claims["aud"]) == (
        "bob@example.com",
        "t1",
        "https://sso.example.com",
        "crm",
    )
    assert "sub" not in claims and "mfa" in claims["amr"]
    assert accepted_by(settings, out, directory) == "bob"


def test_config_with_public_keys_needs_the_private_key(tmp_path, capsys, rsa_key):
    write_jwks(tmp_path / "jwks.json", {"k1": rsa_key})
    settings = write_settings(tmp_path, {"algorithms": ["RS256"], "jwks_file": "jwks.json"})
    code, out, err = token_command(capsys, "alice", "--config", str(settings))
    assert (code, out) == (2, "")
    assert "give --private-key FILE" in err


def test_config_with_a_private_key_and_kid(tmp_path, capsys, directory, rsa_key, rsa_key2):
    write_jwks(tmp_path / "jwks.json", {"k1": rsa_key, "k2": rsa_key2})
    settings = write_settings(tmp_path, {"algorithms": ["RS256", "ES256"], "jwks_file": "jwks.json"})
    key = private_pem(tmp_path, rsa_key2)
    code, out, err = token_command(capsys, "carol", "--config", str(settings), "--private-key", str(key), "--kid", "k2")
    assert code == 0, err
    assert jwt.get_unverified_header(out)["kid"] == "k2"
    assert accepted_by(settings, out, directory) == "carol"


@pytest.mark.parametrize("kid", ["k1", "k9"])
def test_a_token_the_gateway_would_refuse_is_not_printed(tmp_path, capsys, rsa_key, rsa_key2, kid):
    write_jwks(tmp_path / "jwks.json", {"k1": rsa_key})
    settings = write_settings(tmp_path, {"algorithms": ["RS256"], "jwks_file": "jwks.json"})
    wrong = private_pem(tmp_path, rsa_key2)  # not the key the gateway knows as k1
    code, out, err = token_command(
        capsys, "alice", "--config", str(settings), "--private-key", str(wrong), "--kid", kid
    )
    assert (code, out) == (1, "")
    assert "the gateway would refuse this token: token-invalid" in err


def test_user_without_the_matched_attribute_gets_no_token(tmp_path, capsys):
    settings = write_settings(tmp_path, {"algorithms": ["HS256"], "secret": "s" * 40, "user_attribute": "crm_user_id"})
    code, out, err = token_command(capsys, "alice", "--config", str(settings))
    assert (code, out) == (2, "")
    assert "user 'alice' has no 'crm_user_id'" in err


async def test_config_with_oidc_discovery_verifies_against_the_fetched_keys(
    aiohttp_server, tmp_path, capsys, rsa_key, rsa_key2
):
    idp = IdentityProvider({"k1": rsa_key})
    server = await aiohttp_server(idp.app())
    idp.issuer = str(server.make_url("")).rstrip("/")
    settings = write_settings(tmp_path, {"algorithms": ["RS256"], "issuer": idp.issuer, "oidc_discovery": True})
    good, bad = private_pem(tmp_path, rsa_key), private_pem(tmp_path, rsa_key2, "other.pem")
    # The command blocks while it fetches; the provider runs on this loop, so the command runs aside.
    code = await asyncio.to_thread(
        main, ["token", "dave", "--config", str(settings), "--private-key", str(good), "--kid", "k1"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert idp.hits == {"discovery": 1, "jwks": 1}
    code = await asyncio.to_thread(
        main, ["token", "dave", "--config", str(settings), "--private-key", str(bad), "--kid", "k1"]
    )
    assert code == 1 and "would refuse" in capsys.readouterr().err
