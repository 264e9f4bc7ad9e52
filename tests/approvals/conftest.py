"""A copy of the shipped rules with four-eyes rules added (tests/approvals/data/90-approvals.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).parent
APPROVAL_RULES = HERE / "data" / "90-approvals.yaml"


def add_approval_rules(rules: Path) -> Path:
    shutil.copy(APPROVAL_RULES, rules / "policies" / APPROVAL_RULES.name)
    return rules


@pytest.fixture
def approval_rules(rules_copy) -> Path:
    return add_approval_rules(rules_copy)


from tests.integration.conftest import crm, make_gateway  # noqa: E402,F401  (fixtures)
