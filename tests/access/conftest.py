"""Fixtures of the access-request tests: the real gateway (integration fixtures) with real Redis."""

from __future__ import annotations

from tests.approvals.conftest import approval_rules  # noqa: F401  (fixture)
from tests.integration.conftest import crm, make_gateway  # noqa: F401  (fixtures)
