"""The realistic profile's endpoints: ``/api/v2/leads/`` and ``/api/v2/accounts/``, DRF style.

Every route ends with a slash and a path without it is a 404 (no redirect): Django's APPEND_SLASH
does not help an API client, and a gateway must not assume both spellings reach the same view.
Special lead routes (export, bulk-update, bulk-delete) are registered before ``{id}/`` so they win.
Errors are raised (``CrmError`` -> ``{"detail"}``, ``InvalidBody`` -> ``{field: [...]}``) and shaped
by the app's middleware.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from democrm.auth import CALLER
from democrm.realistic import records, shapes, xmlviews
from democrm.realistic.bodies import request_body
from democrm.realistic.store import REALISTIC_STORE, RealisticStore
from democrm.state import CrmError

BASE = "/api/v2"


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _store(request: web.Request) -> RealisticStore:
    return request.app[REALISTIC_STORE]


def _caller(request: web.Request) -> str | None:
    return request[CALLER].user


def _existing(request: web.Request, resource: str) -> dict[str, Any]:
    record = _store(request).get(resource, request.match_info["id"])
    if record is None:
        raise CrmError(404, "Not found.")
    return record


def resource_routes(resource: str) -> list[web.RouteDef]:
    """list / create / view / update (PUT = PATCH, partial) / delete for leads or accounts."""

    async def list_records(request: web.Request) -> web.Response:
        return json_response(shapes.list_answer(request, resource, _store(request)))

    async def create(request: web.Request) -> web.Response:
        body = await request_body(request)
        record = records.new_record(resource, body, _caller(request), _store(request))
        return json_response(_store(request).insert(resource, record), status=201)

    async def view(request: web.Request) -> web.Response:
        record = _existing(request, resource)
        if resource == "leads":
            return json_response(shapes.lead_answer(request, record, _store(request)))
        return json_response(shapes.present(request, record, _store(request)))

    async def update(request: web.Request) -> web.Response:
        record = _existing(request, resource)
        body = await request_body(request)
        return json_response(
            _store(request).replace(resource, records.updated_record(resource, record, body, _store(request)))
        )

    async def delete(request: web.Request) -> web.Response:
        store = _store(request)
        if not store.delete(resource, request.match_info["id"]):
            raise CrmError(404, "Not found.")
        if resource == "accounts":  # like on_delete=SET_NULL: leads keep existing, without the account
            for lead in store.all("leads"):
                if lead["account"] == request.match_info["id"]:
                    store.replace("leads", {**lead, "account": None})
        return web.Response(status=204)

    item = f"{BASE}/{resource}/{{id}}/"
    return [
        web.get(f"{BASE}/{resource}/", list_records),
        web.post(f"{BASE}/{resource}/", create),
        web.get(item, view),
        web.put(item, update),
        web.patch(item, update),
        web.delete(item, delete),
    ]


async def bulk_update(request: web.Request) -> web.Response:
    """``{"ids": [...], <fields>}``: the same change to every listed lead; unknown ids are skipped.
    All or nothing: every lead's new version is built (and validated) before any is stored."""
    store = _store(request)
    body = await request_body(request)
    ids = records.bulk_ids(body)
    changes = {key: value for key, value in body.items() if key != "ids"}
    found = [lead for lead_id in ids if (lead := store.get("leads", lead_id)) is not None]
    new_versions = [records.updated_record("leads", lead, changes, store) for lead in found]
    for lead in new_versions:
        store.replace("leads", lead)
    return json_response({"updated": len(new_versions), "ids": [lead["id"] for lead in new_versions]})


async def bulk_delete(request: web.Request) -> web.Response:
    store = _store(request)
    ids = records.bulk_ids(await request_body(request))
    deleted = [lead_id for lead_id in ids if store.delete("leads", lead_id)]
    return json_response({"deleted": len(deleted), "ids": deleted})


async def export_csv(request: web.Request) -> web.Response:
    response = web.Response(text=shapes.leads_csv(request, _store(request)), content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="leads.csv"'
    return response


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def all_routes() -> list[web.RouteDef]:
    routes = [
        web.get("/health", health),
        web.get(f"{BASE}/leads/export/", export_csv),
        web.post(f"{BASE}/leads/bulk-update/", bulk_update),
        web.post(f"{BASE}/leads/bulk-delete/", bulk_delete),
    ]
    for resource in ("leads", "accounts"):
        routes += resource_routes(resource)
    return routes + xmlviews.xml_routes()  # the XML list and the SOAP service
