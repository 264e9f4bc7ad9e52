"""Scope checks on the records a write touches, made *before* the write reaches the CRM.

A legacy CRM deletes whatever id it is given, so for update and delete the gateway first reads the
target record(s) from the CRM (the catalogue's ``lookup`` endpoint) and refuses when one is out of
the caller's scope. What the body itself writes is decided by gateway.upstream.writes.
"""

from __future__ import annotations

import asyncio

from gateway import fieldpath
from gateway.context import routes
from gateway.errors import BadRequest, Forbidden, RecordNotFound, UpstreamError
from gateway.model import RequestContext
from gateway.response import formats, record_in_scope, records_of
from gateway.upstream import bodies
from gateway.upstream.forward import read_bounded, send, upstream_url

LOOKUP_CONCURRENCY = 8
MAX_BULK_IDS = 1000


def _json_body(body: bytes, content_type: str) -> object | None:
    """The JSON body naming the records of a bulk write (ids_from_body), or 400."""
    if not body:
        return None
    if bodies.media_of(content_type) != "json":
        raise BadRequest("body-unreadable", detail="ids in the body need a JSON body")
    return bodies.load_json(body)


def target_params(ctx: RequestContext, template, body: bytes, content_type: str) -> list[dict[str, str]]:
    """Lookup parameters for each record a write touches, each value one safe path segment."""
    endpoint = ctx.endpoint
    if not endpoint.ids_from_body:
        return [dict(ctx.path_params)]  # the catalogue checked the lookup uses the same params
    data = _json_body(body, content_type)
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


def count_targets(ctx: RequestContext, body: bytes, content_type: str) -> int | None:
    """How many records an update/delete names (for the mass-delete counters); None otherwise."""
    endpoint = ctx.endpoint
    if endpoint.action not in ("update", "delete"):
        return None
    if not endpoint.ids_from_body:
        return 1
    data = _json_body(body, content_type)
    return len(list(fieldpath.values(data, fieldpath.parse(endpoint.ids_from_body)))) if data else 0


async def check_target_records(gw, ruleset, ctx: RequestContext, scope: str, headers, body: bytes) -> None:
    """GET every target record from the CRM and refuse the write if one is out of scope."""
    endpoint = ctx.endpoint
    if endpoint.action not in ("update", "delete") or not endpoint.lookup:
        return
    lookup = ruleset.catalogue.lookup_for(endpoint)
    if lookup is None:  # the catalogue loader validates lookups; this is a last line of defence
        raise Forbidden("data-scope-unenforceable", detail=f"lookup {endpoint.lookup} not in catalogue")
    template = ruleset.catalogue.parse_template(endpoint.lookup)
    targets = target_params(ctx, template, body, headers.get("Content-Type", ""))
    limit = gw.settings.limits.max_response_body_bytes
    semaphore = asyncio.Semaphore(LOOKUP_CONCURRENCY)
    get_headers = headers.copy()
    get_headers.pop("Content-Type", None)

    async def check_one(params: dict[str, str]) -> None:
        try:
            path = routes.expand(template, params)
        except ValueError as exc:
            raise BadRequest("id-invalid", detail=str(exc)) from None
        async with semaphore:
            resp = await send(gw.session, "GET", upstream_url(gw.settings.upstream.url, path, ""), get_headers, None)
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
        if len(records) != 1 or not record_in_scope(
            records[0], endpoint.resource, scope, ctx.identity, ruleset.directory
        ):
            raise Forbidden("record-out-of-scope", detail=f"{path} outside {scope} scope")

    await asyncio.gather(*(check_one(p) for p in targets))
