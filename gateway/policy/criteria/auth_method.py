"""``auth_method: {in: [crm_jwt, crm_token]}`` -- how the caller proved who they are.

The values are :attr:`gateway.model.Identity.method`: ``jwt`` (the organisation's SSO token),
``api_key``, ``trusted_header`` (an SSO proxy), ``crm_jwt`` and ``crm_token`` (the CRM's own login,
forwarded to the CRM unchanged). A rule can thus give a wider data scope only to callers the CRM
itself will also check, or keep service-account API keys away from an operation.

An identity whose method is none of these (``crmgw explain`` describes a user, not a credential)
is a missing fact: it never grants access and never lifts a deny.
"""

from __future__ import annotations

from typing import Any

from gateway.model import RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria._membership import SetMembership
from gateway.policy.criteria.base import CompileEnv, Item

AUTH_METHODS = ("jwt", "api_key", "trusted_header", "crm_jwt", "crm_token")


@register
class AuthMethodCriterion(SetMembership):
    name = "auth_method"
    ok, fail, unknown = "auth-method-ok", "auth-method-unauthorized", "auth-method-unknown"
    specificity = 3  # a fact about this request's credential, like mfa

    @classmethod
    def check(cls, item: Item, env: CompileEnv) -> Any | None:
        if isinstance(item.value, str) and item.value in AUTH_METHODS:
            return item.value
        env.errors.append(
            item.error(f"unknown authentication method {item.value!r}; use one of {', '.join(AUTH_METHODS)}")
        )
        return None

    def fact(self, ctx: RequestContext) -> Any:
        method = ctx.identity.method if ctx.identity is not None else None
        return method if method in AUTH_METHODS else None
