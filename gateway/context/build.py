"""Stage 2, the request's context: where from, when, which endpoint and operation.

Shared by the pipeline, ``crmgw explain`` and the policy tests, so all three decide alike.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.context.normalise import normalise_target, parse_query
from gateway.errors import BadRequest
from gateway.model import Identity, IPAddress, RequestContext

if TYPE_CHECKING:
    from gateway.ruleset import RuleSet

METHOD_TOKEN = re.compile(r"^[A-Z]+$")


def build_context(
    ruleset: RuleSet,
    *,
    request_id: str,
    method: str,
    raw_target: str,
    client_ip: IPAddress | None,
    country: str | None,
    now: datetime,
    identity: Identity | None,
    user_agent: str = "",
) -> tuple[RequestContext, str]:
    """The context of one request; raises BadRequest for a method or target the gateway refuses."""
    if not METHOD_TOKEN.match(method):
        raise BadRequest("method-invalid", detail=f"method {method[:20]!r}")
    path, raw_query = normalise_target(raw_target)
    query = parse_query(raw_query)
    if "_method" in query:
        raise BadRequest("method-override-refused", detail="_method query parameter")
    matched = ruleset.catalogue.match(method, path)
    endpoint, params = matched if matched else (None, {})
    return RequestContext(
        request_id=request_id,
        method="GET" if method == "HEAD" else method,
        path=path,
        query=query,
        client_ip=client_ip,
        country=country,
        now=now,
        identity=identity,
        endpoint=endpoint,
        path_params=params,
        user_agent=user_agent,
    ), raw_query
