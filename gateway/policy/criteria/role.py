"""``role: {in: [sales_rep]}`` -- the caller's effective roles (declared plus inherited)."""

from __future__ import annotations

from typing import Any

from gateway.model import RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria._membership import SetMembership
from gateway.policy.criteria.base import CompileEnv, Item, known


@register
class RoleCriterion(SetMembership):
    name = "role"
    ok, fail, unknown = "role-ok", "role-unauthorized", "role-unknown"
    caller = True
    multi = True

    @classmethod
    def check(cls, item: Item, env: CompileEnv) -> Any | None:
        return known(item, env.roles, "role", env)

    def fact(self, ctx: RequestContext) -> Any:
        return ctx.identity.roles if ctx.identity is not None else None
