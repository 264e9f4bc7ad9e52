"""democrm's endpoints, shaped like docs/CONTRACTS.md's "Demo CRM API" table.

Each resource answers in its own legacy shape (customers ``{"data", ...}``, contacts
``{"results": {"items"}, "next"}``, deals ``{"open", "closed"}``) on purpose: the gateway's response
filtering must find the records wherever a CRM happens to put them. Errors are raised as
``CrmError`` and turned into ``{"error": ...}`` by the app's middleware.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from democrm import records
from democrm.auth import CALLER, issue_token
from democrm.seed import DIRECTORY
from democrm.state import CONFIG, SETTINGS, STORE, CrmError
from democrm.store import TABLES

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
MAX_ID = 2**63 - 1  # SQLite's INTEGER range; a larger id simply does not exist

ListShape = Callable[[list[dict[str, Any]], int, int, int], Any]  # (items, total, page, page_size) -> body


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def acting_user(request: web.Request) -> str | None:
    return request[CALLER].user


def _single(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:  # a repeated parameter is ambiguous; refuse it rather than pick one
        raise CrmError(400, f"{name} given more than once")
    return values[0] if values else None


def _positive_int(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = _single(request, name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise CrmError(400, f"{name} must be an integer from 1 to {maximum}")
    return int(raw)


def page_params(request: web.Request) -> tuple[int, int]:
    page = _positive_int(request, "page", 1, 10**9)
    return page, _positive_int(request, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def record_id(request: web.Request) -> int:
    value = int(request.match_info["id"])  # the route only matches digits
    if value > MAX_ID:
        raise CrmError(404, "not found")
    return value


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise CrmError(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise CrmError(400, "body must be a JSON object")
    return body


# -- list and single-record shapes per resource -------------------------------------------------


def _customers_page(items: list[dict[str, Any]], total: int, number: int, size: int) -> Any:
    return {"data": items, "page": number, "page_size": size, "total": total}


def _contacts_page(items: list[dict[str, Any]], total: int, number: int, size: int) -> Any:
    more = number * size < total
    following = f"/api/contacts?page={number + 1}&page_size={size}" if more else None
    return {"results": {"items": items, "count": total}, "next": following}


def _deals_page(items: list[dict[str, Any]], total: int, number: int, size: int) -> Any:
    closed = [deal for deal in items if deal["stage"].startswith("closed")]
    return {
        "open": [deal for deal in items if not deal["stage"].startswith("closed")],
        "closed": closed,
        "page": number,
    }


LIST_SHAPES: dict[str, ListShape] = {"customers": _customers_page, "contacts": _contacts_page, "deals": _deals_page}
ONE_SHAPES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "customers": lambda record: record,
    "contacts": lambda record: {"contact": record},
    "deals": lambda record: record,
}


def resource_routes(table: str) -> list[web.RouteDef]:
    """list / view / create / update / delete for one table."""
    one = ONE_SHAPES[table]

    async def list_records(request: web.Request) -> web.Response:
        number, size = page_params(request)
        items, total = request.app[STORE].page(table, offset=(number - 1) * size, limit=size)
        return json_response(LIST_SHAPES[table](items, total, number, size))

    async def view(request: web.Request) -> web.Response:
        record = request.app[STORE].get(table, record_id(request))
        if record is None:
            raise CrmError(404, "not found")
        return json_response(one(record))

    async def create(request: web.Request) -> web.Response:
        body = await json_object(request)
        try:
            fields = records.for_create(table, body, acting_user(request))
        except records.InvalidRecord as problem:
            raise CrmError(400, str(problem)) from None
        return json_response(one(request.app[STORE].insert(table, fields)), status=201)

    async def update(request: web.Request) -> web.Response:
        wanted = record_id(request)
        if request.app[STORE].get(table, wanted) is None:
            raise CrmError(404, "not found")
        body = await json_object(request)
        try:
            changes = records.for_update(table, body)
        except records.InvalidRecord as problem:
            raise CrmError(400, str(problem)) from None
        updated = request.app[STORE].update(table, wanted, changes)
        if updated is None:  # deleted by another request while this one's body was being read
            raise CrmError(404, "not found")
        return json_response(one(updated))

    async def delete(request: web.Request) -> web.Response:
        if not request.app[STORE].delete(table, record_id(request)):
            raise CrmError(404, "not found")
        return web.Response(status=204)

    item = f"/api/{table}/{{id:\\d+}}"
    return [
        web.get(f"/api/{table}", list_records),
        web.post(f"/api/{table}", create),
        web.get(item, view),
        web.put(item, update),
        web.patch(item, update),
        web.delete(item, delete),
    ]


# -- customers' bulk endpoints ------------------------------------------------------------------


async def bulk_delete(request: web.Request) -> web.Response:
    ids = (await json_object(request)).get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise CrmError(400, "ids must be a list of integers")
    deleted = request.app[STORE].delete_many("customers", [i for i in ids if 0 < i <= MAX_ID])
    return json_response({"deleted": deleted})


def _export_filters(request: web.Request) -> dict[str, str]:
    return {name: value for name in ("region", "team") if (value := _single(request, name)) is not None}


async def export_json(request: web.Request) -> web.Response:
    return json_response({"customers": request.app[STORE].all("customers", _export_filters(request))})


async def export_csv(request: web.Request) -> web.Response:
    columns = list(TABLES["customers"])
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(columns)
    for record in request.app[STORE].all("customers", _export_filters(request)):
        writer.writerow([record[name] for name in columns])
    response = web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="customers.csv"'
    return response


async def import_csv(request: web.Request) -> web.Response:
    try:
        text = (await request.read()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CrmError(400, "CSV body must be UTF-8") from None
    try:
        new = records.customers_from_csv(text, acting_user(request))
    except (records.InvalidRecord, csv.Error) as problem:
        raise CrmError(400, str(problem)) from None
    request.app[STORE].insert_many("customers", new)
    return json_response({"imported": len(new)})


# -- login, admin, health -------------------------------------------------------------------------


async def login(request: web.Request) -> web.Response:
    user = (await json_object(request)).get("user")
    if not isinstance(user, str) or user not in DIRECTORY:
        raise CrmError(401, "unknown user")
    return json_response({"token": issue_token(user, request.app[CONFIG].jwt_secret)})


async def admin_users(request: web.Request) -> web.Response:
    users = [{"id": user, "email": f"{user}@example.com", **attributes} for user, attributes in DIRECTORY.items()]
    return json_response({"users": users})


async def admin_settings(request: web.Request) -> web.Response:
    request.app[SETTINGS].update(await json_object(request))
    return json_response({"ok": True})


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def all_routes() -> list[web.RouteDef]:
    routes = [
        web.get("/health", health),
        web.post("/api/login", login),
        web.post("/api/customers/bulk-delete", bulk_delete),
        web.get("/api/customers/export.csv", export_csv),
        web.get("/api/customers/export.json", export_json),
        web.post("/api/customers/import", import_csv),
        web.get("/api/admin/users", admin_users),
        web.post("/api/admin/settings", admin_settings),
    ]
    for table in TABLES:
        routes += resource_routes(table)
    return routes
