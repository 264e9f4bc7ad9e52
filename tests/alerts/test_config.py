"""The alerts settings section and the store factory the gateway calls."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.alerts import open_alert_store
from gateway.alerts.config import AlertsConfig, SyslogConfig, WebhookConfig
from tests.alerts.conftest import raise_kwargs


@pytest.mark.parametrize(
    "data",
    [
        {"journl": "x"},
        {"webhook": {"url": "ftp://x"}},
        {"webhook": {"url": "http://x", "retries": -1}},
        {"syslog": {"facility": "kitchen"}},
    ],
)
def test_bad_settings_are_refused(data):
    with pytest.raises(ValidationError):
        AlertsConfig.model_validate(data)


def test_webhook_headers_from_the_environment(monkeypatch):
    config = WebhookConfig(url="http://x", headers_env={"Authorization": "HOOK_AUTH"})
    with pytest.raises(ValueError):
        config.resolved_headers()
    monkeypatch.setenv("HOOK_AUTH", "Bearer s3cret")
    assert config.resolved_headers() == {"Authorization": "Bearer s3cret"}


def test_syslog_address_forms():
    assert SyslogConfig(address="10.0.0.1:514").target() == ("10.0.0.1", 514)
    assert SyslogConfig(address="/dev/log").target() == "/dev/log"


async def test_factory_resolves_the_journal_and_uses_the_gateway_redis(tmp_path, redis_url):
    store = await open_alert_store(AlertsConfig(journal="var/alerts.jsonl"), redis_url=redis_url, base_dir=tmp_path)
    try:
        await store.raise_alert(**raise_kwargs())
        health = store.health()
        assert health["redis"] == "ok" and health["status"] == "ok"
        assert (tmp_path / "var" / "alerts.jsonl").exists()
    finally:
        await store.close()


async def test_factory_without_redis_is_journal_only_and_not_degraded(tmp_path):
    store = await open_alert_store(AlertsConfig(), redis_url=None, base_dir=tmp_path)
    try:
        assert store.health()["redis"] == "not-configured" and store.health()["status"] == "ok"
    finally:
        await store.close()
