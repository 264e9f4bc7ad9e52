"""``action: {in: [view, list]}`` -- the action of the catalogue endpoint (see model.ACTIONS)."""

from __future__ import annotations

from typing import Any

from gateway.model import ACTIONS, RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria._membership import SetMembership
from gateway.policy.criteria.base import CompileEnv, Item, known


@register
class ActionCriterion(SetMembership):
    name = "action"
    ok, fail, unknown = "action-ok", "action-unauthorized", "action-unknown"

    @classmethod
    def check(cls, item: Item, env: CompileEnv) -> Any | None:
        return known(item, ACTIONS, "action", env)

    def fact(self, ctx: RequestContext) -> Any:
        return ctx.endpoint.action if ctx.endpoint is not None else None
