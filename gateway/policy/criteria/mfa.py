"""``mfa: true`` -- the credential carried a multi-factor proof (``amr``).

This is the criterion a step-up can satisfy: when it is the only thing an allow rule lacks, the
engine answers 401 ``mfa-required`` instead of 403, so the client knows to authenticate again.
"""

from __future__ import annotations

from typing import Any

from gateway.model import RequestContext
from gateway.policy.criteria import register
from gateway.policy.criteria.base import CompileEnv, Criterion, Fact, Outcome


@register
class MfaCriterion(Criterion):
    name = "mfa"
    ok, fail, unknown = "mfa-ok", "mfa-required", "mfa-unknown"
    specificity = 3
    step_up = True

    def __init__(self, required: bool):
        self.required = required

    @classmethod
    def compile(cls, raw: Any, env: CompileEnv) -> Criterion | None:
        if not isinstance(raw, bool):
            env.error(f"mfa takes true or false, got {raw!r}")
            return None
        return cls(raw)

    def facts(self) -> tuple[Fact, ...]:
        return (("mfa", mfa_of),)

    def evaluate(self, ctx: RequestContext) -> Outcome:
        if ctx.identity is None:
            return None
        return ctx.identity.mfa == self.required


def mfa_of(ctx: RequestContext) -> bool | None:
    return ctx.identity.mfa if ctx.identity is not None else None
