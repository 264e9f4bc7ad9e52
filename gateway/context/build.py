"""Stage 2, the request's context: where from, when, which endpoint and operation.

Shared by the pipeline, ``crmgw explain`` and the policy tests, so all three decide alike.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.context.normalise import normalise_target, parse_query
from gateway.errors import BadRequest
from gateway.model import Endpoint, Identity, IPAddress, RequestContext

if TYPE_CHECKING:
    from gateway.context.catalogue import Catalogue
    from gateway.ruleset import RuleSet

METHOD_TOKEN = re.compile(r"^[A-Z]+$")
TARGET_CACHE_SIZE = 4096
TARGET_CACHE_MAX_LENGTH = 512
# What a target normalises and maps to: path, raw query, query, endpoint, path parameters. Shared
# by the requests with the same target: read-only (RequestContext's query and path_params are
# Mappings nobody writes).
Target = tuple[str, str, dict[str, str], Endpoint | None, dict[str, str]]


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
    path, raw_query, query, endpoint, params = _target(ruleset.catalogue, method, raw_target)
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


def _target(catalogue: Catalogue, method: str, raw_target: str) -> Target:
    """Normalise, parse and route a target, remembered per (method, target) in the catalogue (a
    client repeats its targets; these are pure functions of them and of the catalogue). Refused
    targets raise every time and are never remembered; long targets are not remembered."""
    known = catalogue.targets
    found: Target | None = known.get((method, raw_target))
    if found is not None:
        return found
    path, raw_query = normalise_target(raw_target)
    query = parse_query(raw_query)
    if "_method" in query:
        raise BadRequest("method-override-refused", detail="_method query parameter")
    matched = catalogue.match(method, path)
    endpoint, params = matched if matched else (None, {})
    target = (path, raw_query, query, endpoint, params)
    if len(raw_target) <= TARGET_CACHE_MAX_LENGTH:
        if len(known) >= TARGET_CACHE_SIZE:
            known.clear()  # a crude bound: cheaper than LRU bookkeeping on every hit
        known[(method, raw_target)] = target
    return target
