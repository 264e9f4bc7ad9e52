"""upstream.on_behalf_of and upstream.user_credentials: what loads, what is refused at load and why,
and how the per-user secrets are read (environment, file) without ever showing one."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pydantic import ValidationError

from gateway.errors import Forbidden
from gateway.identity.devkeys import DEV_IDENTITY_CONFIG
from gateway.rulefile import RuleError
from gateway.settings import Settings, load_settings
from gateway.upstream.user_secrets import UserSecrets, env_key
from tests.conftest import RULES

SERVICE = {"value": "Bearer service"}
CREDS = {"from_env": "CRM_TOKEN_{USER}"}


def settings(**upstream) -> Settings:
    up = {"url": "http://crm:1", "credential": SERVICE, **upstream}
    return Settings.model_validate({"upstream": up, "identity": DEV_IDENTITY_CONFIG.model_dump()})


def at(key: str, message: str) -> RuleError:
    return RuleError("gateway.yaml", 1, 1, f"{key}: {message}")


def test_attribution_settings_load_with_their_defaults():
    s = settings(
        on_behalf_of=[{"header": "X-Acting-User", "value": "email"}, {"header": "X-CRM-User-Id"}],
        user_credentials=CREDS,
    )
    first, second = s.upstream.on_behalf_of
    assert (first.header, first.value, first.missing) == ("X-Acting-User", "email", "refuse")
    assert (second.value, second.missing) == ("id", "refuse")
    creds = s.upstream.user_credentials
    assert (creds.header, creds.format, creds.fallback) == ("Authorization", "Bearer {secret}", "service")


@pytest.mark.parametrize(
    ("upstream", "name", "why"),
    [
        ({"on_behalf_of": [{"header": "X-Acting-User", "value": "email"}]}, "X-Acting-User", "on_behalf_of"),
        ({"on_behalf_of": [{"header": "X-Acting-User"}]}, "x-acting-user", "on_behalf_of"),
        ({"user_credentials": {**CREDS, "header": "X-CRM-Token"}}, "X-CRM-Token", "user_credentials"),
    ],
)
def test_headers_naming_the_acting_user_cannot_be_forwarded_from_clients(upstream, name, why):
    with pytest.raises(ValidationError, match=rf"{name!r} cannot be forwarded from clients: {why}"):
        settings(forward_headers=[name], **upstream)


@pytest.mark.parametrize(
    ("upstream", "message"),
    [
        ({"on_behalf_of": [{"header": "X-Acting-Team", "value": "team"}]}, "shared by many users"),
        ({"on_behalf_of": [{"header": "X-Acting-User", "value": "e-mail"}]}, "not an attribute name"),
        ({"on_behalf_of": [{"header": "X_Acting_User"}]}, "spell it with '-'"),
        ({"on_behalf_of": [{"header": "X-Request-Id"}]}, "the gateway or HTTP already uses"),
        ({"on_behalf_of": [{"header": "User-Agent"}]}, "the gateway or HTTP already uses"),
        ({"on_behalf_of": [{"header": "Authorization"}]}, "the gateway or HTTP already uses"),
        (
            {"on_behalf_of": [{"header": "X-CRM-User", "value": "email"}]},
            "'X-CRM-User' is also set by identity_headers",
        ),
        (
            {"on_behalf_of": [{"header": "X-A"}, {"header": "x-a", "value": "email"}]},
            "'x-a' is also set by on_behalf_of",
        ),
        ({"on_behalf_of": [{"header": "X-A", "missing": "omit"}]}, "'refuse' or 'omit_on_reads'"),
        ({"user_credentials": {}}, "give 'from_env', 'from_file' or both"),
        ({"user_credentials": {**CREDS, "format": "Bearer {token}"}}, "'{secret}' exactly once"),
        ({"user_credentials": {**CREDS, "format": "{secret} {secret}"}}, "'{secret}' exactly once"),
        ({"user_credentials": {**CREDS, "format": "Bearer\n{secret}"}}, "printable ASCII"),
        ({"user_credentials": {"from_env": "{USER}"}}, "a variable name with '{USER}' once"),
        ({"user_credentials": {"from_env": "CRM_TOKEN"}}, "a variable name with '{USER}' once"),
        ({"user_credentials": {"from_env": "CRMGW_TOKEN_{USER}"}}, "override gateway.yaml"),
        ({"user_credentials": {**CREDS, "header": "X-CRM-Roles"}}, "'X-CRM-Roles' is also set by identity_headers"),
        ({"user_credentials": {**CREDS, "header": "Content-Type"}}, "the gateway or HTTP already uses"),
        ({"user_credentials": {**CREDS, "fallback": "maybe"}}, "'service' or 'refuse'"),
        ({"credential": None, "user_credentials": CREDS}, "fallback: service needs upstream.credential"),
        (
            {"credential": {"value_env": "CRM_TOKEN_SERVICE"}, "user_credentials": CREDS},
            r"would read the service credential \$CRM_TOKEN_SERVICE",
        ),
    ],
)
def test_ambiguous_or_unsafe_attribution_settings_are_refused(upstream, message):
    with pytest.raises(ValidationError, match=message):
        settings(**upstream)


def test_refuse_fallback_needs_no_service_credential_and_a_personal_header_may_differ():
    s = settings(credential=None, user_credentials={**CREDS, "fallback": "refuse"})
    assert s.upstream.user_credentials.fallback == "refuse"
    s = settings(user_credentials={**CREDS, "header": "X-CRM-Token", "format": "{secret}"})
    assert s.upstream.user_credentials.header == "X-CRM-Token"


# --- the secrets file at settings load --------------------------------------------------------


def write_settings(tmp_path: Path, user_credentials: dict) -> Path:
    data = {
        "upstream": {"url": "http://crm:1", "credential": SERVICE, "user_credentials": user_credentials},
        "rules_dir": str(RULES),
        "audit": {"path": str(tmp_path / "audit.log")},
        "identity": DEV_IDENTITY_CONFIG.model_dump(),
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def secrets_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets" / "crm-tokens.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def line_of(path: Path, key: str) -> int:
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.lstrip().startswith(f"{key}:"))


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602, 0o601])
def test_a_secrets_file_other_users_can_open_is_refused_at_load_with_file_and_line(tmp_path, mode):
    secrets_file(tmp_path, "carol: crmpat-carol\n", mode)
    path = write_settings(tmp_path, {"from_file": "secrets/crm-tokens.yaml"})
    loaded, errors = load_settings(path)
    assert loaded is None and len(errors) == 1
    text = str(errors[0])
    assert text.startswith(f"{path}:{line_of(path, 'from_file')}:")
    assert (
        f"upstream.user_credentials.from_file: {tmp_path}/secrets/crm-tokens.yaml is accessible to every user" in text
    )
    assert f"(mode {mode:04o})" in text and "crmpat-carol" not in text


def test_a_private_secrets_file_loads(tmp_path):
    secrets_file(tmp_path, "carol: crmpat-carol\n", 0o600)
    loaded, errors = load_settings(write_settings(tmp_path, {"from_file": "secrets/crm-tokens.yaml"}))
    assert errors == [] and loaded.upstream.user_credentials.from_file == "secrets/crm-tokens.yaml"


def test_a_missing_secrets_file_is_refused_at_load(tmp_path):
    path = write_settings(tmp_path, {"from_file": "secrets/none.yaml"})
    loaded, errors = load_settings(path)
    assert loaded is None and "from_file: cannot read" in str(errors[0])


def test_bad_entries_are_reported_at_their_line_in_the_secrets_file_without_the_secret(tmp_path):
    secrets = secrets_file(tmp_path, 'carol: crmpat-carol\ndave: 12345\nerin: "tok\\r\\nX-Injected: 1"\nfrank: ""\n')
    loaded, errors = load_settings(write_settings(tmp_path, {"from_file": "secrets/crm-tokens.yaml"}))
    assert loaded is None
    assert [(e.file, e.line) for e in errors] == [(str(secrets), 2), (str(secrets), 3), (str(secrets), 4)]
    assert "'dave': the secret must be a non-empty string" in errors[0].message
    assert "'erin': the secret does not make a valid header value" in errors[1].message
    text = "\n".join(map(str, errors))
    assert "12345" not in text and "Injected" not in text and "crmpat" not in text


def test_environment_problems_name_the_variable_never_the_value(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_TOKEN_CAROL", "tok\nX-Injected: 1")
    monkeypatch.setenv("CRM_TOKEN_DAVE", "")
    path = write_settings(tmp_path, CREDS)
    loaded, errors = load_settings(path)
    assert loaded is None
    assert [e.line for e in errors] == [line_of(path, "from_env")] * 2
    assert "$CRM_TOKEN_CAROL is empty or does not make a valid header value" in errors[0].message
    assert "$CRM_TOKEN_DAVE" in errors[1].message and "Injected" not in str(errors)


# --- UserSecrets: lookups, ambiguity, reload --------------------------------------------------


def directory(*ids: str):
    return SimpleNamespace(users=dict.fromkeys(ids))


def test_env_key_spells_the_user_id_as_a_variable_name():
    assert [env_key(u) for u in ("carol", "svc-reporting", "a.b@c")] == ["CAROL", "SVC_REPORTING", "A_B_C"]


def test_an_environment_variable_two_directory_users_would_read_is_refused():
    environ = {"CRM_TOKEN_SVC_A": "s3cret", "CRM_TOKEN_CAROL": "c4rol"}
    secrets = UserSecrets(
        fmt="Bearer {secret}", from_env="CRM_TOKEN_{USER}", file=None, reload_interval=1, environ=environ
    )
    assert secrets.load(at) == []
    users = directory("svc-a", "svc_a", "carol", "dave")
    assert secrets.lookup("carol", users) == "Bearer c4rol" and secrets.lookup("dave", users) is None
    with pytest.raises(Forbidden) as refused:
        secrets.lookup("svc-a", users)
    assert refused.value.reason == "upstream-credential-ambiguous" and "s3cret" not in str(refused.value)
    assert secrets.lookup("svc-a", directory("svc-a")) == "Bearer s3cret"  # a new directory is recounted
    assert "s3cret" not in repr(secrets) and "c4rol" not in repr(secrets)


def test_a_user_given_in_both_sources_is_refused(tmp_path):
    file = secrets_file(tmp_path, "carol: from-file\n")
    secrets = UserSecrets(
        fmt="{secret}",
        from_env="CRM_TOKEN_{USER}",
        file=file,
        reload_interval=1,
        environ={"CRM_TOKEN_CAROL": "from-env"},
    )
    problems = secrets.load(at)
    assert len(problems) == 1 and "'carol' has a secret in" in problems[0].message
    assert "$CRM_TOKEN_CAROL: give it once" in problems[0].message and "from-" not in problems[0].message


def test_an_edited_file_is_reloaded_and_a_bad_edit_keeps_the_last_good_version(tmp_path, caplog):
    file = secrets_file(tmp_path, "carol: first\n")
    secrets = UserSecrets(fmt="Bearer {secret}", from_env=None, file=file, reload_interval=0, environ={})
    assert secrets.load(at) == []
    users = directory("carol", "dave")
    assert secrets.lookup("carol", users) == "Bearer first"
    file.write_text("carol: second\ndave: third\n")
    assert (secrets.lookup("carol", users), secrets.lookup("dave", users)) == ("Bearer second", "Bearer third")
    caplog.set_level(logging.DEBUG)
    file.write_text("carol: fourth-secret\n")
    file.chmod(0o644)
    assert secrets.lookup("carol", users) == "Bearer second"  # refused: the last good version serves
    assert "not reloaded, keeping the last good version (2 users)" in caplog.text
    assert "accessible to every user" in caplog.text
    assert "fourth" not in caplog.text and "second" not in caplog.text
    os.chmod(file, 0o600)  # fixing the permissions alone is a change
    assert secrets.lookup("carol", users) == "Bearer fourth-secret" and secrets.lookup("dave", users) is None
