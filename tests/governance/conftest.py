"""The governance tests' fixtures: guards on the real test Redis (flushed first)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.governance.guard import GovernanceGuard
from gateway.model import Identity, User
from gateway.redisconn import connect_redis


def who(user: str) -> Identity:
    return Identity(user=User(id=user, roles=frozenset({"sales_rep"})), method="jwt")


@pytest.fixture
async def guards(redis_url):
    made = []

    async def make(**kw) -> GovernanceGuard:
        guard = GovernanceGuard(connect_redis(redis_url), lambda: datetime.now(UTC), **kw)
        await guard.start()
        made.append(guard)
        return guard

    await (client := connect_redis(redis_url)).flushdb()
    await client.aclose()
    yield make
    for guard in made:
        await guard.stop()
        assert guard.client is not None
        await guard.client.aclose()
