"""What a decided request may carry to the CRM: checked before anything is forwarded.

One function for the live gateway (gateway.pipeline) and ``crmgw explain``, so an admin is told
exactly what the running gateway would refuse. Restricted callers (scope other than ``all``, or
any mask) may send only declared query parameters; a body is read and decided by
gateway.response.writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.context.queryargs import check_query
from gateway.model import Obligations, RequestContext
from gateway.response.writes import check_request_body
from gateway.upstream.bodies import RequestBody

if TYPE_CHECKING:  # annotation only: the rule set is built far from here (gateway.ruleset)
    from gateway.ruleset import RuleSet


def check_request(
    ruleset: RuleSet, ctx: RequestContext, obligations: Obligations, method: str, body: RequestBody
) -> None:
    """Raise the refusal (400/403/415) the request earns; return quietly when it may go on."""
    endpoint, identity = ctx.endpoint, ctx.identity
    assert endpoint is not None and identity is not None  # an allowed decision has both
    if obligations.needs_body:
        check_query(endpoint.query, ctx.query)
    check_request_body(
        endpoint,
        method,
        obligations.scope,
        identity,
        ruleset.directory,
        ruleset.catalogue.references,
        body,
    )
