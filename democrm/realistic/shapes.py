"""How the realistic profile answers reads: list pages, single leads, the CSV export.

Shaped like real CRMs rather than to suit the gateway: a list carries the page's records twice
(``results`` and ``leads``), CRM-wide aggregates (``count`` of the filtered set, ``totals`` over
every lead), a side list of every user, and the accounts the page references (``included``). A
single lead comes with ``related`` full records of other leads. ``fields`` can leave out the very
keys a gateway would scope by; ``expand`` swaps ids for nested objects. Query parameters are read
the Django way: when one is repeated, the last value counts.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from aiohttp import web

from democrm.realistic.people import all_profiles, email_of, profile_ref, user_of_profile
from democrm.realistic.seed import LEAD_STATUSES
from democrm.realistic.store import RealisticStore
from democrm.state import CrmError

DEFAULT_LIMIT = 20
MAX_LIMIT = 500  # a larger limit is capped, not refused (DRF's max_limit)
RELATED_LIMIT = 3
SEARCHED = {"leads": ("title", "email"), "accounts": ("name",)}
CSV_COLUMNS = (
    "ID",
    "Title",
    "Amount",
    "Status",
    "Created by",
    "Assigned to",
    "Team",
    "Phone Number",
    "Email",
    "Quote price",
)


def query_value(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    return values[-1] if values else None


def _listed(request: web.Request, name: str) -> list[str]:
    return [item.strip() for item in (query_value(request, name) or "").split(",") if item.strip()]


def _positive(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isascii() and raw.isdigit() and int(raw) > 0 else None


def filtered(request: web.Request, resource: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``search`` (case-insensitive, in title/email or name) and, for leads, an exact ``status``."""
    search = (query_value(request, "search") or "").strip().lower()
    if search:
        records = [r for r in records if any(search in str(r.get(key) or "").lower() for key in SEARCHED[resource])]
    status = query_value(request, "status")
    if resource == "leads" and status:
        records = [r for r in records if r["status"] == status]
    return records


def present(request: web.Request, record: dict[str, Any], store: RealisticStore) -> dict[str, Any]:
    """A lead or account as this request asked for it: ``expand`` first, then sparse ``fields``."""
    record = dict(record)
    expand = _listed(request, "expand")
    if "account" in expand and isinstance(record.get("account"), str):
        record["account"] = store.get("accounts", record["account"]) or record["account"]
    if "created_by" in expand and isinstance(record.get("created_by"), str):
        user = user_of_profile(record["created_by"])
        record["created_by"] = profile_ref(user) if user else record["created_by"]
    wanted = _listed(request, "fields")
    return {key: value for key, value in record.items() if key in wanted} if wanted else record


def _totals(leads: list[dict[str, Any]]) -> dict[str, Any]:
    by_status = {status: sum(1 for lead in leads if lead["status"] == status) for status in LEAD_STATUSES}
    return {"amount_sum": round(sum(lead["amount"] for lead in leads), 2), "by_status": by_status}


def _included(store: RealisticStore, leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = dict.fromkeys(lead["account"] for lead in leads if lead.get("account"))
    return [account for account_id in ids if (account := store.get("accounts", account_id)) is not None]


def list_answer(request: web.Request, resource: str, store: RealisticStore) -> dict[str, Any]:
    everything = store.all(resource)
    matching = filtered(request, resource, everything)
    limit = min(_positive(query_value(request, "limit")) or DEFAULT_LIMIT, MAX_LIMIT)
    page = _positive(query_value(request, "page") or "1")
    last_page = max(1, math.ceil(len(matching) / limit))
    if page is None or page > last_page:
        raise CrmError(404, "Invalid page.")
    items = matching[(page - 1) * limit : page * limit]
    shown = [present(request, record, store) for record in items]
    answer: dict[str, Any] = {
        "count": len(matching),
        "next": str(request.url.update_query(page=page + 1)) if page < last_page else None,
        "previous": str(request.url.update_query(page=page - 1)) if page > 1 else None,
        "results": shown,
    }
    if resource == "leads":
        answer["leads"] = [dict(record) for record in shown]
        answer["totals"] = _totals(everything)
    answer["users"] = all_profiles()
    if resource == "leads":
        answer["included"] = _included(store, items)
        if "contacts" in _listed(request, "include"):
            answer["contacts"] = [{"lead": lead["id"], **contact} for lead in items for contact in lead["contacts"]]
    return answer


def lead_answer(request: web.Request, lead: dict[str, Any], store: RealisticStore) -> dict[str, Any]:
    """``{"lead": record, "related": [other leads of the same account, full records]}``."""
    related = [
        other
        for other in store.all("leads")
        if lead["account"] and other["account"] == lead["account"] and other["id"] != lead["id"]
    ][:RELATED_LIMIT]
    return {"lead": present(request, lead, store), "related": [present(request, other, store) for other in related]}


def _emails(people: list[dict[str, Any]]) -> str:
    return "; ".join(person["email"] for person in people)


def leads_csv(request: web.Request, store: RealisticStore) -> str:
    """Human column headers, people as e-mail addresses: what a spreadsheet user gets."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for lead in filtered(request, "leads", store.all("leads")):
        creator = user_of_profile(lead["created_by"] or "")
        writer.writerow(
            [
                lead["id"],
                lead["title"],
                lead["amount"],
                lead["status"],
                email_of(creator) if creator else "",
                _emails(lead["assigned_to"]),
                "; ".join(team["name"] for team in lead["teams"]),
                lead["Phone"],
                lead["email"],
                "" if lead["quote_price"] is None else lead["quote_price"],
            ]
        )
    return out.getvalue()
