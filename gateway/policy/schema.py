"""The shape of rules/policies/*.yaml and rules/grants.yaml (pydantic, unknown keys refused).

Only the structure is checked here. The ``allow``/``deny`` blocks are open-ended trees whose leaves
belong to the criteria registry, so they are compiled (and checked) by
:mod:`gateway.policy.conditions`; cross-references (operations, roles, users, lists, scope levels)
are checked by :mod:`gateway.policy.compile`, which has the catalogue and the directory.

Files are validated piece by piece (the header, then each rule, each list, each grant) so one bad
rule does not hide the problems of the next: ``crmgw rules check`` shows all of them at once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, StrictInt, StrictStr, TypeAdapter

from gateway.rulefile import StrictModel

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
LIST_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class PolicyHeader(StrictModel):
    """A policy file: named lists and rules (both optional, so a file may hold only lists)."""

    format: Literal["crmgw.rules/v1"]
    lists: dict[str, Any] = Field(default_factory=dict)
    rules: list[Any] = Field(default_factory=list)


# The values of one named list (strings: networks, country codes, role names, ...).
LIST_VALUES = TypeAdapter(list[StrictStr])


class MatchSpec(StrictModel):
    operations: list[StrictStr] = Field(min_length=1)


class MaskSpec(StrictModel):
    field: StrictStr
    op: Literal["remove", "redact", "hash"]
    keep_last: StrictInt = Field(default=0, ge=0, le=64)


class ApproversSpec(StrictModel):
    roles: list[StrictStr] = Field(default_factory=list)
    manager: bool = False


class ApprovalSpec(StrictModel):
    """Four-eyes: ``approval: {approvers: manager | {roles: [...], manager: true}, valid_for: 1h, when: ...}``."""

    approvers: Literal["manager"] | ApproversSpec
    valid_for: StrictStr = "1h"
    when: Any = None  # a condition like an allow block; absent: every granted request


class RuleSpec(StrictModel):
    id: StrictStr = Field(pattern=ID_PATTERN, max_length=100)
    title: StrictStr = Field(min_length=1)
    description: StrictStr = ""
    status: Literal["active", "disabled"] = "active"
    mode: Literal["enforce", "shadow"] = "enforce"
    match: MatchSpec
    allow: Any = None
    deny: Any = None
    data_scope: dict[StrictStr, StrictStr] | None = None
    mask: list[MaskSpec] = Field(default_factory=list)
    approval: ApprovalSpec | None = None


class GrantsHeader(StrictModel):
    format: Literal["crmgw.rules/v1"]
    grants: list[Any] = Field(default_factory=list)


class GrantSpec(StrictModel):
    """A time-boxed extra permission for one user; lapses by itself at ``until``."""

    model_config = ConfigDict(populate_by_name=True)  # ``from_`` is accepted as well as ``from``, as it always was

    id: StrictStr = Field(pattern=ID_PATTERN, max_length=100)
    user: StrictStr
    operations: list[StrictStr] = Field(min_length=1)
    until: StrictStr
    from_: StrictStr | None = Field(default=None, alias="from")
    data_scope: Literal["own", "team", "department", "region", "branch", "all"] = "own"
    reason: StrictStr = Field(min_length=1)
    # Optional: the grant also needs a multi-factor credential (401 mfa-required otherwise).
    require_mfa: bool = False
