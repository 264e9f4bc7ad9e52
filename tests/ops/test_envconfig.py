"""Environment overrides of gateway.yaml (gateway.envconfig.apply_env)."""

from __future__ import annotations

import pytest

from gateway.envconfig import EnvOverrideError, apply_env
from gateway.settings import Settings

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
    with pytest.raises(EnvOverrideError, match="CRMGW_LISTEN__PORT__X"):
        apply_env(BASE, {"CRMGW_LISTEN__PORT__X": "1"})


def test_other_variables_and_the_test_harness_variables_are_ignored():
    env = {"HOME": "/root", "CRMGW_TEST_REDIS_URL": "redis://x", "CRMGW_TEST_REDIS_PORT": "1"}
    assert apply_env(BASE, env) == BASE


def test_a_misspelt_override_is_refused_by_validation_not_ignored():
    data = apply_env(BASE, {"CRMGW_UPSTRAEM__URL": "http://x"})
    with pytest.raises(ValueError, match="upstraem"):
        Settings.model_validate(data)
