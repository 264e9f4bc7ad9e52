"""The decisions search: page, JSON API and CSV export, answered by the audit index.

The index (gateway.audit.index_search) answers in milliseconds and pages with a ``before`` cursor
(the position of the last line shown); while it is being built the files are scanned as before,
bounded by ``audit_scan_bytes``, and the page says which of the two answered. Searches run in a
worker thread (SQLite and file reads), never on the event loop.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from aiohttp import web

from gateway.audit.index_csv import to_csv
from gateway.audit.index_search import search_page
from gateway.audit.search import AuditQuery, SearchResult
from gateway.console.filters import FilterError, local_datetime, text_param, to_local_input
from gateway.console.routes import Console
from gateway.console.session import Viewer

FILTERS = ("user", "operation", "effect", "rule", "reason", "since", "until")
EXPORT_MAX = 10_000  # lines in one CSV export (newest first); a header says when it stopped there
Record = dict[str, object]


def _query(request: web.Request, viewer: Viewer) -> AuditQuery:
    q = request.query
    effect = q.get("effect") or None
    if effect not in (None, "allow", "deny"):
        raise FilterError("effect must be allow or deny")
    return AuditQuery(
        user=text_param(q, "user"),
        operation=text_param(q, "operation"),
        effect=effect,
        rule=text_param(q, "rule"),
        reason=text_param(q, "reason"),
        since=local_datetime(q.get("since"), viewer.tz, "since"),
        until=local_datetime(q.get("until"), viewer.tz, "until"),
    )


def _before(request: web.Request) -> int | None:
    """The page cursor: the position of the last line of the page before (gateway.audit.index)."""
    value = request.query.get("before") or ""
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise FilterError("before must be a position from a previous page")
    return int(value)


async def _indexed(console: Console, query: AuditQuery, before: int | None, limit: int | None = None) -> SearchResult:
    return await asyncio.to_thread(
        search_page,
        console.audit_path,
        query,
        limit=limit or console.config.page_size,
        before=before,
        max_bytes=console.config.audit_scan_bytes,
    )


def _links(request: web.Request, found: SearchResult | None) -> dict[str, str]:
    """Query strings of the next page, the first page and the CSV export of this search."""
    kept = {k: request.query[k] for k in FILTERS if request.query.get(k)}
    links = {"first": urlencode(kept), "csv": urlencode(kept)}
    if found is not None and found.next_before is not None:
        links["older"] = urlencode({**kept, "before": str(found.next_before)})
    return links


async def decisions(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    error, found, query = "", None, AuditQuery()
    try:
        query = _query(request, viewer)
        found = await _indexed(console, query, _before(request))
    except FilterError as exc:
        error = str(exc)
    return console.render(
        request,
        viewer,
        "decisions.html",
        {
            "found": found,
            "error": error,
            "q": request.query,
            "since": to_local_input(query.since, viewer.tz),
            "until": to_local_input(query.until, viewer.tz),
            "links": _links(request, found),
            "paged": "before" in request.query,
        },
        status=400 if error else 200,
    )


async def decisions_api(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    try:
        found = await _indexed(console, _query(request, viewer), _before(request))
    except FilterError as exc:
        raise ValueError(str(exc)) from None
    return console.json(
        {
            "decisions": found.records,
            "next_before": found.next_before,  # ask again with before=<this> for the older page
            "via": found.via,
            "index_behind_bytes": found.behind_bytes,
            "scanned_bytes": found.scanned_bytes,
            "truncated": found.truncated,
        }
    )


async def decisions_csv(console: Console, request: web.Request, viewer: Viewer) -> web.Response:
    """The search as CSV (newest first, at most EXPORT_MAX lines), formula-safe (gateway.audit.index_csv)."""
    try:
        query, before = _query(request, viewer), _before(request)
    except FilterError as exc:
        raise ValueError(str(exc)) from None
    records: list[Record] = []
    while len(records) < EXPORT_MAX:
        found = await _indexed(console, query, before, limit=min(1000, EXPORT_MAX - len(records)))
        records += found.records
        before = found.next_before
        if before is None:
            break
    response = web.Response(text=to_csv(records), content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="decisions.csv"'
    if before is not None:
        response.headers["X-Crmgw-Truncated"] = f"first {EXPORT_MAX} lines"
    return response
