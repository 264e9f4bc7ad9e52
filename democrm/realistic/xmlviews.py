"""The realistic profile's XML faces: what older CRMs speak beside (or instead of) JSON.

    GET  /api/v2/xml/leads/   the leads list as plain XML: ids and people as attributes, the
                              CRM-wide <count> and <totalCount>, a <users> side list of everyone
    POST /soap/               a SOAP 1.1 service at one URL: GetLeads (page, limit, search, status)
                              and DeleteLead (id); anything else is a soap:Client fault

The leads are the JSON list's (same search, status, paging) in other clothes, so a test can hold
the XML twins to what the JSON one returns. Shaped like real services rather than to suit the
gateway: namespaces with prefixes (SOAP) or a default namespace (plain XML), a SOAP Header the
caller never asked for, ``xsi:nil`` for a missing price, one element per assignee and team (XML
has no lists: one <assigned_to> is a list of one). The envelope is parsed with defusedxml: a
DTD is refused, as a real SOAP stack must (SOAP 1.1 forbids them).
"""

from __future__ import annotations

import math
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web
from defusedxml.ElementTree import fromstring

from democrm.realistic.people import all_profiles
from democrm.realistic.shapes import DEFAULT_LIMIT, MAX_LIMIT, SEARCHED, query_value
from democrm.realistic.store import REALISTIC_STORE, RealisticStore
from democrm.state import CrmError

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
PLAIN_NS = "urn:democrm:v2"
SOAP_NS = "urn:democrm:soap"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


class SoapFault(Exception):
    """Answered as a soap:Fault with status 500, as SOAP 1.1 over HTTP says."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _store(request: web.Request) -> RealisticStore:
    return request.app[REALISTIC_STORE]


def matching(leads: list[dict[str, Any]], search: str | None, status: str | None) -> list[dict[str, Any]]:
    """shapes.filtered's rules, with the parameters given rather than read from the query."""
    search = (search or "").strip().lower()
    if search:
        leads = [r for r in leads if any(search in str(r.get(key) or "").lower() for key in SEARCHED["leads"])]
    return [r for r in leads if r["status"] == status] if status else leads


def page_of(leads: list[dict[str, Any]], limit: str | None, page: str | None) -> tuple[list[dict[str, Any]], int, int]:
    """(the page's leads, page number, last page); CrmError 404 when there is no such page."""
    size = min(_positive(limit) or DEFAULT_LIMIT, MAX_LIMIT)
    number = _positive(page or "1")
    last = max(1, math.ceil(len(leads) / size))
    if number is None or number > last:
        raise CrmError(404, "Invalid page.")
    return leads[(number - 1) * size : number * size], number, last


def _positive(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) > 0 else None


# --- writing -----------------------------------------------------------------------------------


def _el(tag: str, value: Any = None, **attributes: Any) -> str:
    attrs = "".join(f" {name}={quoteattr(str(v))}" for name, v in attributes.items())
    if value is None or value == "":
        return f"<{tag}{attrs}/>"
    return f"<{tag}{attrs}>{escape(str(value))}</{tag}>"


def _person(tag: str, person: dict[str, str]) -> str:
    return _el(tag, id=person["id"], email=person["email"], name=person["name"])


def plain_lead(lead: dict[str, Any]) -> str:
    """Attributes for ids and people; one <assigned_to> / <teams> element per assignee / team."""
    parts = [_el(key, lead[key]) for key in ("title", "amount", "status", "created_by")]
    parts += [_person("assigned_to", person) for person in lead["assigned_to"]]
    parts += [_el("teams", id=team["id"], name=team["name"]) for team in lead["teams"]]
    parts += [_el(key, lead[key]) for key in ("account", "Phone", "mobilePhone", "email", "quote_price")]
    for contact in lead["contacts"]:
        inner = "".join(_el(key, contact[key]) for key in ("first_name", "last_name", "email", "phone"))
        inner += "".join(_person("assigned_to", person) for person in contact["assigned_to"])
        parts.append(f"<contacts id={quoteattr(contact['id'])}>{inner}</contacts>")
    parts.append(_el("created_at", lead["created_at"]))
    return f"<lead id={quoteattr(lead['id'])}>{''.join(parts)}</lead>"


def soap_lead(lead: dict[str, Any]) -> str:
    """Child elements only, every one in the service's namespace; a missing price is xsi:nil."""

    def el(tag: str, value: Any) -> str:
        if value is None:
            return f'<crm:{tag} xsi:nil="true"/>'
        return f"<crm:{tag}>{escape(str(value))}</crm:{tag}>"

    def person(tag: str, p: dict[str, str]) -> str:
        return f"<crm:{tag}>{el('id', p['id'])}{el('email', p['email'])}{el('name', p['name'])}</crm:{tag}>"

    parts = [el(key, lead[key]) for key in ("id", "title", "amount", "status", "created_by")]
    parts += [person("assigned_to", p) for p in lead["assigned_to"]]
    parts += [f"<crm:teams>{el('id', t['id'])}{el('name', t['name'])}</crm:teams>" for t in lead["teams"]]
    parts += [el(key, lead[key]) for key in ("account", "Phone", "mobilePhone", "email", "quote_price")]
    for contact in lead["contacts"]:
        inner = "".join(el(key, contact[key]) for key in ("id", "first_name", "last_name", "email", "phone"))
        inner += "".join(person("assigned_to", p) for p in contact["assigned_to"])
        parts.append(f"<crm:contacts>{inner}</crm:contacts>")
    parts.append(el("created_at", lead["created_at"]))
    return f"<crm:lead>{''.join(parts)}</crm:lead>"


# --- plain XML ---------------------------------------------------------------------------------


async def xml_leads(request: web.Request) -> web.Response:
    everything = _store(request).all("leads")
    leads = matching(everything, query_value(request, "search"), query_value(request, "status"))
    shown, number, last = page_of(leads, query_value(request, "limit"), query_value(request, "page"))
    next_url = str(request.url.update_query(page=number + 1)) if number < last else None
    previous_url = str(request.url.update_query(page=number - 1)) if number > 1 else None
    users = "".join(_person("user", person) for person in all_profiles())
    body = (
        f'{XML_DECLARATION}<response xmlns="{PLAIN_NS}">'
        f"{_el('count', len(leads))}{_el('totalCount', len(everything))}"
        f"{_el('next', next_url)}{_el('previous', previous_url)}"
        f"<leads>{''.join(plain_lead(lead) for lead in shown)}</leads>"
        f"<users>{users}</users></response>"
    )
    return web.Response(text=body, content_type="application/xml", charset="utf-8")


# --- SOAP --------------------------------------------------------------------------------------


def _envelope(body: str, header: str = "") -> str:
    return (
        f'{XML_DECLARATION}<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:xsi="{XSI}" xmlns:crm="{SOAP_NS}">'
        f"{header}<soap:Body>{body}</soap:Body></soap:Envelope>"
    )


def _soap_response(body: str, status: int = 200) -> web.Response:
    header = "<soap:Header><crm:ServerInfo><crm:node>crm-app-3</crm:node></crm:ServerInfo></soap:Header>"
    return web.Response(
        text=_envelope(body, header if status == 200 else ""), status=status, content_type="text/xml", charset="utf-8"
    )


def _call(raw: bytes) -> tuple[str, dict[str, str]]:
    """The operation named by the Body's one child, and its parameters by local name."""
    try:
        envelope = fromstring(raw, forbid_dtd=True)
    except (ParseError, ValueError) as exc:
        raise SoapFault("soap:Client", f"unreadable envelope: {exc}") from None
    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    if envelope.tag != f"{{{SOAP_ENV}}}Envelope" or body is None or len(body) != 1:
        raise SoapFault("soap:Client", "expected one call in a SOAP 1.1 Body")
    call: Element = body[0]
    return _local(call.tag), {_local(child.tag): (child.text or "").strip() for child in call}


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


async def soap(request: web.Request) -> web.Response:
    try:
        operation, params = _call(await request.read())
        store = _store(request)
        if operation == "GetLeads":
            everything = store.all("leads")
            leads = matching(everything, params.get("search"), params.get("status"))
            try:
                shown, _, _ = page_of(leads, params.get("limit"), params.get("page"))
            except CrmError:
                raise SoapFault("soap:Client", "Invalid page.") from None
            users = "".join(
                f"<crm:user><crm:id>{p['id']}</crm:id><crm:email>{escape(p['email'])}</crm:email></crm:user>"
                for p in all_profiles()
            )
            return _soap_response(
                f"<crm:GetLeadsResponse><crm:count>{len(leads)}</crm:count>"
                f"<crm:totalCount>{len(everything)}</crm:totalCount>"
                f"{''.join(soap_lead(lead) for lead in shown)}<crm:users>{users}</crm:users></crm:GetLeadsResponse>"
            )
        if operation == "DeleteLead":
            deleted = int(store.delete("leads", params.get("id", "")))
            return _soap_response(
                f"<crm:DeleteLeadResponse><crm:deleted>{deleted}</crm:deleted></crm:DeleteLeadResponse>"
            )
        raise SoapFault("soap:Client", f"unknown operation {operation!r}")
    except SoapFault as fault:
        return _soap_response(
            f"<soap:Fault><faultcode>{fault.code}</faultcode><faultstring>{escape(fault.message)}</faultstring>"
            f"</soap:Fault>",
            status=500,
        )


def xml_routes() -> list[web.RouteDef]:
    return [web.get("/api/v2/xml/leads/", xml_leads), web.post("/soap/", soap)]
