"""Fixtures for democrm's tests: a small seeded CRM (fast), the realistic profile, the usual credentials."""

from __future__ import annotations

import pytest

from democrm.app import create_app
from democrm.realistic import create_realistic_app

SERVICE_TOKEN = "demo-crm-service-token"
AS_ALICE = {"Authorization": f"Bearer {SERVICE_TOKEN}", "X-CRM-User": "alice"}
SMALL = {"customers": 30, "contacts": 40, "deals": 20}


@pytest.fixture
async def crm(aiohttp_client):
    """A client for a small seeded democrm (30 customers, 40 contacts, 20 deals)."""
    return await aiohttp_client(create_app(**SMALL))


@pytest.fixture
async def make_crm(aiohttp_client):
    """Build a client for a democrm with any create_app options (plus client options)."""

    async def build(client_options: dict | None = None, **app_options):
        return await aiohttp_client(create_app(**{**SMALL, **app_options}), **(client_options or {}))

    return build


# -- the realistic profile (democrm.realistic) ----------------------------------------------------

AS_CAROL = {"Authorization": f"Bearer {SERVICE_TOKEN}", "X-CRM-User": "carol"}
SERVICE_ONLY = {"Authorization": f"Bearer {SERVICE_TOKEN}"}


@pytest.fixture
async def realistic(aiohttp_client):
    """A client for the realistic profile with its default seed (60 leads, 30 accounts)."""
    return await aiohttp_client(create_app(profile="realistic"))


@pytest.fixture
async def make_realistic(aiohttp_client):
    """Build a client for a realistic CRM with any create_realistic_app options."""

    async def build(client_options: dict | None = None, **app_options):
        return await aiohttp_client(create_realistic_app(**app_options), **(client_options or {}))

    return build
