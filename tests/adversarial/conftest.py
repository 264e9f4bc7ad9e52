"""The real gateway (shipped rules, create_app) in front of the recording CRM stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.identity.devkeys import mint_token
from tests.adversarial.standin import CrmStandIn
from tests.conftest import RULES, open_rules
from tests.integration.conftest import gateway_settings


@pytest.fixture
async def standin():
    server = await CrmStandIn().start()
    yield server
    await server.close()


SLOW_HEADER_TIMEOUT = 2.0


@pytest.fixture
def make_gw(aiohttp_client, tmp_path, clock, standin):
    """``await make_gw(**settings_overrides)`` -> TestClient of a real gateway in front of the stand-in."""

    async def factory(*, rules: Path = RULES, upstream_url: str | None = None, total_timeout: float = 10, **extra):
        # a short request-head timeout so the slowloris case is quick (the default is 15 s)
        extra.setdefault("limits", {"header_timeout": SLOW_HEADER_TIMEOUT})
        settings = gateway_settings(upstream_url or standin.url, tmp_path, rules, **extra)
        upstream = settings.upstream.model_copy(update={"total_timeout": total_timeout})
        settings = settings.model_copy(update={"upstream": upstream})
        store = open_rules(rules)
        assert store is not None
        return await aiohttp_client(create_app(settings, store, clock=clock))

    return factory


@pytest.fixture
async def gw(make_gw):
    return await make_gw()


@pytest.fixture
def audit_lines(tmp_path):
    def read() -> list[dict]:
        path = tmp_path / "audit.log"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    return read


def bearer(user: str, *, mfa: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(user, mfa=mfa)}"}


# grace is an administrator with MFA: every mapped operation is allowed, so what is refused or
# mis-routed is the gateway's doing, not a policy's.
GRACE = bearer("grace", mfa=True)
