"""The gateway in front of the demo CRM, both real aiohttp servers on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from democrm.app import create_app as create_crm
from gateway.app import create_app
from gateway.identity.devkeys import DEV_IDENTITY_CONFIG, mint_token
from gateway.settings import Settings
from tests.conftest import RULES, open_rules

CRM_TOKEN = "demo-crm-service-token"


@pytest.fixture
async def crm(aiohttp_server):
    return await aiohttp_server(create_crm(service_token=CRM_TOKEN))


@pytest.fixture
async def crm_gzip(aiohttp_server):
    return await aiohttp_server(create_crm(service_token=CRM_TOKEN, gzip=True))


def gateway_settings(upstream_url: str, tmp_path: Path, rules: Path, **extra) -> Settings:
    """Settings for a test gateway; ``upstream={...}`` adds keys to the upstream section."""
    data = {
        "upstream": {
            "url": upstream_url,
            "credential": {"value": f"Bearer {CRM_TOKEN}"},
            "total_timeout": 10,
            **extra.pop("upstream", {}),
        },
        "rules_dir": str(rules),
        "reload_interval": 0.2,
        "trusted_proxies": ["127.0.0.1/32", "::1/128"],
        "audit": {"path": str(tmp_path / "audit.log")},
        "identity": DEV_IDENTITY_CONFIG.model_dump(),
        "base_dir": str(tmp_path),
    }
    data.update(extra)
    return Settings.model_validate(data)


@pytest.fixture
def make_gateway(aiohttp_client, tmp_path, clock):
    """``await make_gateway(crm_server, rules=...)`` -> a TestClient talking to a real gateway."""

    async def factory(crm_server, *, rules: Path = RULES, **extra):
        settings = gateway_settings(str(crm_server.make_url("")).rstrip("/"), tmp_path, rules, **extra)
        return await aiohttp_client(create_app(settings, open_rules(rules), clock=clock))

    return factory


@pytest.fixture
async def gw(make_gateway, crm):
    return await make_gateway(crm)


def auth(user: str, *, mfa: bool = False, ip: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {mint_token(user, mfa=mfa)}"}
    if ip:
        headers["X-Forwarded-For"] = ip
    return headers


def audit_lines(tmp_path: Path) -> list[dict[str, Any]]:
    """The audit lines a test gateway (gateway_settings) wrote, oldest first."""
    return [orjson.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
