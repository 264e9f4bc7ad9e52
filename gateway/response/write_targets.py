"""Scope checks on the records a write touches, made *before* the write reaches the CRM.

A legacy CRM deletes whatever id it is given, so for update and delete the gateway first reads the
target record(s) from the CRM (the catalogue's ``lookup`` endpoint, fetched with
gateway.upstream.forward) and refuses when one is out of the caller's scope, judged as an answer's
records are (gateway.response.filter, gateway.response.scope). What the body itself writes is
decided by gateway.response.writes.

A bulk write names its records in a JSON body (the endpoint's ``ids_from_body``); that body is the
pipeline's one gateway.upstream.bodies.RequestBody, parsed once for every check.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from multidict import CIMultiDict

from gateway import fieldpath
from gateway.context import routes
from gateway.errors import BadRequest, Forbidden, RecordNotFound, UpstreamError
from gateway.model import Endpoint, RequestContext
from gateway.response import formats
from gateway.response.filter import records_of
from gateway.response.scope import record_in_scope
from gateway.upstream.bodies import RequestBody
from gateway.upstream.forward import read_bounded, send, upstream_url

if TYPE_CHECKING:  # annotations only
    from gateway.ruleset import RuleSet
    from gateway.settings import Settings

LOOKUP_CONCURRENCY = 8
MAX_BULK_IDS = 1000

Params = dict[str, str | int]  # a lookup's path parameters (gateway.context.routes.expand)


class Crm(Protocol):
    """What a target lookup needs of the gateway (gateway.services.Services): its CRM client and settings."""

    @property
    def session(self) -> aiohttp.ClientSession: ...

    @property
    def settings(self) -> Settings: ...


def _json_body(body: RequestBody) -> Any:
    """The JSON body naming the records of a bulk write (ids_from_body): None when empty, or 400."""
    if not body.raw:
        return None
    if body.media != "json":
        raise BadRequest("body-unreadable", detail="ids in the body need a JSON body")
    return body.data()


def target_params(ctx: RequestContext, template: routes.Template, body: RequestBody) -> list[Params]:
    """Lookup parameters for each record a write touches, each value one safe path segment."""
    endpoint = _endpoint(ctx)
    if not endpoint.ids_from_body:
        return [dict(ctx.path_params)]  # the catalogue checked the lookup uses the same params
    data = _json_body(body)
    raw = list(fieldpath.values(data, fieldpath.parse(endpoint.ids_from_body))) if data else []
    if not raw:
        raise BadRequest("ids-missing", detail=f"no ids at {endpoint.ids_from_body}")
    if len(raw) > MAX_BULK_IDS:
        raise BadRequest("too-many-ids", detail=f"{len(raw)} ids > {MAX_BULK_IDS}")
    (name,) = template.params or ("id",)
    try:
        return [{name: routes.encode_segment(v)} for v in raw]
    except ValueError as exc:
        raise BadRequest("id-invalid", detail=str(exc)) from None


def count_targets(ctx: RequestContext, body: RequestBody) -> int | None:
    """How many records an update/delete names (for the mass-delete counters); None otherwise."""
    endpoint = _endpoint(ctx)
    if endpoint.action not in ("update", "delete"):
        return None
    if not endpoint.ids_from_body:
        return 1
    data = _json_body(body)
    return len(list(fieldpath.values(data, fieldpath.parse(endpoint.ids_from_body)))) if data else 0


async def check_target_records(
    crm: Crm, ruleset: RuleSet, ctx: RequestContext, scope: str, headers: CIMultiDict[str], body: RequestBody
) -> None:
    """GET every target record from the CRM and refuse the write if one is out of scope."""
    endpoint, identity = _endpoint(ctx), ctx.identity
    if endpoint.action not in ("update", "delete") or not endpoint.lookup:
        return
    assert identity is not None  # an allowed decision has one
    lookup = ruleset.catalogue.lookup_for(endpoint)
    if lookup is None:  # the catalogue loader validates lookups; this is a last line of defence
        raise Forbidden("data-scope-unenforceable", detail=f"lookup {endpoint.lookup} not in catalogue")
    template = ruleset.catalogue.parse_template(endpoint.lookup)
    forwarded_type = headers.get("Content-Type")
    if (forwarded_type or "") != (body.content_type or ""):
        # The ids are read as the CRM will read the body: by the Content-Type it is sent (a client
        # can have it dropped, "Connection: Content-Type"). Only then is the body parsed again.
        body = RequestBody(body.raw, forwarded_type)
    targets = target_params(ctx, template, body)
    session, settings = crm.session, crm.settings
    limit = settings.limits.max_response_body_bytes
    semaphore = asyncio.Semaphore(LOOKUP_CONCURRENCY)
    get_headers = headers.copy()
    get_headers.pop("Content-Type", None)

    async def check_one(params: Params) -> None:
        try:
            path = routes.expand(template, params)
        except ValueError as exc:
            raise BadRequest("id-invalid", detail=str(exc)) from None
        async with semaphore:
            resp = await send(session, "GET", upstream_url(settings.upstream.url, path, ""), get_headers, None)
            try:
                if resp.status == 404:
                    raise RecordNotFound("record-not-found", detail=path)
                if resp.status != 200:
                    raise UpstreamError("record-lookup-failed", detail=f"GET {path}: {resp.status}")
                raw = await read_bounded(resp, limit)
                encoding = resp.headers.get("Content-Encoding")
            finally:
                resp.release()
        obj = formats.load_json(formats.decode_content(raw, encoding, limit))
        records = records_of(obj, lookup)
        if len(records) != 1 or not record_in_scope(records[0], endpoint.resource, scope, identity, ruleset.directory):
            raise Forbidden("record-out-of-scope", detail=f"{path} outside {scope} scope")

    await asyncio.gather(*(check_one(p) for p in targets))


def _endpoint(ctx: RequestContext) -> Endpoint:
    assert ctx.endpoint is not None  # only an allowed decision gets here, and it has an endpoint
    return ctx.endpoint
