"""``method: {in: [GET]}`` -- the canonical HTTP method (HEAD is already GET)."""

from __future__ import annotations

from typing import Any

from gateway.model import RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria._membership import SetMembership
from gateway.policy.criteria.base import CompileEnv, Item, known

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@register
class MethodCriterion(SetMembership):
    name = "method"
    ok, fail, unknown = "method-ok", "method-unauthorized", "method-unknown"

    @classmethod
    def check(cls, item: Item, env: CompileEnv) -> Any | None:
        return known(item, METHODS, "HTTP method (write it in capitals)", env)

    def fact(self, ctx: RequestContext) -> Any:
        return ctx.method or None
