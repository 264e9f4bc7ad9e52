"""Environment overrides of gateway.yaml (gateway.envconfig): declared keys only; secrets by declared name."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import pytest

from gateway import envconfig
from gateway.envconfig import EnvOverrideError, declared_keys, secret_names, split_environ
from gateway.settings import Settings, load_settings
from tests.conftest import RULES

apply_env = partial(envconfig.apply_env, model=Settings)

BASE = {"listen": {"host": "127.0.0.1", "port": 8080}, "upstream": {"url": "http://crm:1"}, "identity": {}}


def test_double_underscore_names_a_nested_key():
    out = apply_env(BASE, {"CRMGW_UPSTREAM__URL": "http://crm.internal:8081"})
    assert out["upstream"]["url"] == "http://crm.internal:8081"


def test_single_underscore_stays_inside_the_key():
    assert apply_env(BASE, {"CRMGW_REDIS_URL": "redis://redis:6379/0"})["redis_url"] == "redis://redis:6379/0"


def test_json_values_are_parsed():
    out = apply_env(BASE, {"CRMGW_LISTEN__PORT": "9090", "CRMGW_TRUSTED_PROXIES": '["10.0.0.5/32"]'})
    assert out["listen"]["port"] == 9090 and out["trusted_proxies"] == ["10.0.0.5/32"]


def test_the_input_mapping_is_not_changed():
    apply_env(BASE, {"CRMGW_LISTEN__PORT": "1"})
    assert BASE["listen"]["port"] == 8080


def test_missing_sections_are_created():
    assert apply_env(BASE, {"CRMGW_AUDIT__PATH": "/var/log/a.log"})["audit"] == {"path": "/var/log/a.log"}


def test_a_whole_section_then_one_key_of_it_compose_in_either_order():
    out = apply_env(BASE, {"CRMGW_LISTEN__HOST": "0.0.0.0", "CRMGW_LISTEN": '{"port": 1}'})
    assert out["listen"] == {"port": 1, "host": "0.0.0.0"}


def test_descending_into_a_scalar_is_an_error_naming_the_variable():
    with pytest.raises(EnvOverrideError, match=r"CRMGW_LISTEN__PORT: listen is not a mapping \(set by CRMGW_LISTEN\)"):
        apply_env(BASE, {"CRMGW_LISTEN": "1", "CRMGW_LISTEN__PORT": "2"})


def test_other_variables_and_the_test_harness_variables_are_ignored():
    env = {"HOME": "/root", "CRMGW_TEST_REDIS_URL": "redis://x", "CRMGW_TEST_REDIS_PORT": "1", "CRMGW_CONFIG": "x"}
    assert apply_env(BASE, env) == BASE
    assert split_environ(env, Settings) == ([], [])


def test_only_declared_keys_are_overrides():
    env = {
        "CRMGW_MASK_KEY": "k" * 32,
        "CRMGW_CONSOLE_SECRET": "c" * 32,
        "CRMGW_UPSTRAEM__URL": "http://x",
        "CRMGW_JWT_SECRET": "j",
        "CRMGW_REDIS_URL": "redis://r",
    }
    overrides, others = split_environ(env, Settings)
    assert overrides == [("CRMGW_REDIS_URL", ("redis_url",), "redis://r")]
    assert others == ["CRMGW_CONSOLE_SECRET", "CRMGW_JWT_SECRET", "CRMGW_MASK_KEY", "CRMGW_UPSTRAEM__URL"]
    assert apply_env(BASE, env) == {**BASE, "redis_url": "redis://r"}


def test_the_declared_keys_come_from_the_model():
    keys = declared_keys(Settings)
    assert keys["CRMGW_LIMITS__MAX_CONNECTIONS"] == ("limits", "max_connections")
    assert keys["CRMGW_ALERTS__WEBHOOK__URL"] == ("alerts", "webhook", "url")  # inside an optional section
    assert "CRMGW_BASE_DIR" not in keys  # computed, never read


def settings_file(tmp_path, extra: str = "") -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"upstream: {{url: 'http://crm:1'}}\nrules_dir: {RULES}\naudit: {{path: audit.log}}\n"
        f"identity: {{api_key: {{header: X-API-Key}}}}\n{extra}"
    )
    return path


def test_secrets_are_the_names_the_settings_declare(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMGW_WEBHOOK_AUTH", "x")
    path = settings_file(
        tmp_path, "alerts: {webhook: {url: 'http://h', headers_env: {Authorization: CRMGW_WEBHOOK_AUTH}}}\n"
    )
    settings, errors = load_settings(path)
    assert errors == []
    assert secret_names(settings) == {
        "CRMGW_WEBHOOK_AUTH": "alerts.webhook.headers_env.Authorization",
        "CRMGW_CONSOLE_SECRET": "console.session_secret_env",
        "CRMGW_MASK_KEY": "mask_key_env",
        "CRMGW_MODEL_KEY": "scoring.model_key_env",  # the detector's model-card key (issue 15)
    }


def test_an_unknown_variable_is_a_warning_naming_it(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CRMGW_FOO", "1")
    monkeypatch.setenv("CRMGW_MASK_KEY", "k" * 32)
    with caplog.at_level(logging.WARNING, logger="crmgw.settings"):
        settings, errors = load_settings(settings_file(tmp_path))
    assert settings is not None and errors == []
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and warned[0].startswith("CRMGW_FOO is set but is neither")


def test_a_bad_value_names_the_variable_not_a_file_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMGW_LISTEN__PORT", "99999")
    monkeypatch.setenv("CRMGW_AUDIT", '{"pth": "x"}')
    settings, errors = load_settings(settings_file(tmp_path))
    assert settings is None
    assert sorted(str(e).split(":")[0] for e in errors) == ["CRMGW_AUDIT", "CRMGW_LISTEN__PORT"]
    assert any("unknown key" in str(e) or "Extra inputs" in str(e) for e in errors)


def test_a_file_error_still_names_its_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMGW_LISTEN__HOST", "0.0.0.0")
    settings, errors = load_settings(settings_file(tmp_path, "listen: {port: x}\n"))
    assert [str(e).split(":")[:2] for e in errors] == [[str(tmp_path / "gateway.yaml"), "5"]]


def test_a_secret_that_is_also_an_override_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMGW_REDIS_URL", "redis://r")
    settings, errors = load_settings(settings_file(tmp_path, "mask_key_env: CRMGW_REDIS_URL\n"))
    assert settings is None and str(errors[0]).startswith("CRMGW_REDIS_URL: named by mask_key_env as a secret")
