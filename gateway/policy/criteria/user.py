"""``user: {in: [alice]}`` -- the caller's user id from the directory."""

from __future__ import annotations

from typing import Any

from gateway.model import RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria._membership import SetMembership
from gateway.policy.criteria.base import CompileEnv, Item, known


@register
class UserCriterion(SetMembership):
    name = "user"
    ok, fail, unknown = "user-ok", "user-unauthorized", "user-unknown"
    caller = True

    @classmethod
    def check(cls, item: Item, env: CompileEnv) -> Any | None:
        return known(item, env.users, "user", env)

    def fact(self, ctx: RequestContext) -> Any:
        return ctx.identity.user.id if ctx.identity is not None else None
