"""``country: {in: $denied_countries}`` -- the ISO 3166-1 alpha-2 country of the client IP.

No country (private, documentation or unassigned address; no database entry) is ``None``: it never
grants access and never lifts a deny, so a deny on listed countries also refuses unknown ones.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.model import RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria._membership import SetMembership
from gateway.policy.criteria.base import CompileEnv, Item

ISO_CODE = re.compile(r"^[A-Z]{2}$")


@register
class CountryCriterion(SetMembership):
    name = "country"
    ok, fail, unknown = "country-ok", "country-denied", "country-unknown"
    specificity = 4

    @classmethod
    def check(cls, item: Item, env: CompileEnv) -> Any | None:
        if isinstance(item.value, str) and ISO_CODE.fullmatch(item.value):
            return item.value
        hint = " (quote NO, YES, ON, OFF: YAML reads them as booleans)" if isinstance(item.value, bool) else ""
        message = f"country must be an upper-case ISO 3166-1 alpha-2 code, got {item.value!r}{hint}"
        env.errors.append(item.error(message))
        return None

    def fact(self, ctx: RequestContext) -> Any:
        return ctx.country.upper() if ctx.country else None
