"""The real gateway (shipped rules, create_app) in front of the recording CRM stand-in."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.identity.devkeys import mint_token
from gateway.ruleset import load_ruleset
from gateway.rulestore import RuleStore
from tests.adversarial.standin import CrmStandIn
from tests.conftest import RULES
from tests.integration.conftest import gateway_settings


@functools.lru_cache(maxsize=1)
def shipped_ruleset():
    """The shipped rules, loaded once: a RuleSet is immutable, and loading costs ~60 ms per test."""
    ruleset, errors = load_ruleset(RULES)
    assert ruleset is not None, errors
    return ruleset


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
        store = RuleStore(rules, shipped_ruleset()) if rules == RULES else RuleStore.open(rules)[0]
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
