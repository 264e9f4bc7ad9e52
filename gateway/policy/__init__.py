"""The policy engine: rule files -> CompiledPolicy -> Decision.

    compile_policies(docs, grants_doc, operations=..., roles=..., users=...) -> (CompiledPolicy | None, errors)
    PolicyEngine(policy, revision).decide(ctx) -> Decision

Modules: ``schema`` (file shapes), ``criteria/`` (one module per criterion, registered by name),
``conditions`` (and/or/not in Kleene logic), ``compile`` (validation and indexing), ``grants``
(time-boxed permissions), ``compiled`` (what the engine evaluates), ``engine`` (the decision),
``cache`` (decisions remembered by the facts their rules read, per engine).
"""

from gateway.policy.compile import compile_policies
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.engine import PolicyEngine

__all__ = ["CompiledPolicy", "PolicyEngine", "compile_policies"]
