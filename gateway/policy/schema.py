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

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter, ValidationError

from gateway.rulefile import Document, RuleError

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
LIST_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PolicyHeader(Strict):
    """A policy file: named lists and rules (both optional, so a file may hold only lists)."""

    format: Literal["crmgw.rules/v1"]
    lists: dict[str, Any] = Field(default_factory=dict)
    rules: list[Any] = Field(default_factory=list)


# The values of one named list (strings: networks, country codes, role names, ...).
LIST_VALUES = TypeAdapter(list[StrictStr])


class MatchSpec(Strict):
    operations: list[StrictStr] = Field(min_length=1)


class MaskSpec(Strict):
    field: StrictStr
    op: Literal["remove", "redact", "hash"]
    keep_last: StrictInt = Field(default=0, ge=0, le=64)


class ApproversSpec(Strict):
    roles: list[StrictStr] = Field(default_factory=list)
    manager: bool = False


class ApprovalSpec(Strict):
    """Four-eyes: ``approval: {approvers: manager | {roles: [...], manager: true}, valid_for: 1h, when: ...}``."""

    approvers: Literal["manager"] | ApproversSpec
    valid_for: StrictStr = "1h"
    when: Any = None  # a condition like an allow block; absent: every granted request


class RuleSpec(Strict):
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


class GrantsHeader(Strict):
    format: Literal["crmgw.rules/v1"]
    grants: list[Any] = Field(default_factory=list)


class GrantSpec(Strict):
    """A time-boxed extra permission for one user; lapses by itself at ``until``."""

    id: StrictStr = Field(pattern=ID_PATTERN, max_length=100)
    user: StrictStr
    operations: list[StrictStr] = Field(min_length=1)
    until: StrictStr
    from_: StrictStr | None = Field(default=None, alias="from")
    data_scope: Literal["own", "team", "department", "region", "branch", "all"] = "own"
    reason: StrictStr = Field(min_length=1)
    # Optional: the grant also needs a multi-factor credential (401 mfa-required otherwise).
    require_mfa: bool = False


def validate_at(doc: Document, path: tuple[Any, ...], data: Any, model: Any, errors: list[RuleError]) -> Any:
    """Validate the part of ``doc`` found at ``path``; on failure report ``file:line:col`` and return None.

    ``model`` is a pydantic model class or a TypeAdapter. Messages name the full dotted path, as
    :func:`gateway.rulefile.validate` does for whole files.
    """
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        for item in exc.errors(include_url=False):
            loc = path + tuple(item["loc"])
            msg = item["msg"]
            if item["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            where = ".".join(str(p) for p in loc) or "(top level)"
            errors.append(doc.error(loc, f"{where}: {msg}"))
        return None
