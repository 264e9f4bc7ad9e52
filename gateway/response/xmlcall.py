"""An XML request body -- a SOAP call -- read the way the CRM will read it and held to its contract.

A SOAP service answers every operation at one URL: the element inside ``Body`` says which one the
CRM runs (``GetLeads``, ``DeleteLead``). The catalogue maps ``POST /soap/`` to one operation, so the
body must hold exactly the call the endpoint declares and nothing beside it, for every caller
whatever their scope: otherwise a ``DeleteLead`` posted where ``GetLeads`` is declared would be
decided, audited and counted as a read. The endpoint declares its call as the body's records::

    body: {media: [xml], records: ["Envelope.Body.GetLeads"], writable: [page, limit, search]}

Each record path names one element from the root (namespaces ignored, as in answers); along the way
and around the call nothing else may appear (no ``Header``, no second call, no attribute). The
call's children are its parameters: a restricted caller may send only those in ``writable``
(gateway.response.writes checks them like the keys of a JSON record). A SOAP 1.2 ``action``
parameter of the Content-Type, which a CRM may dispatch on instead, must name the same call.
Parsing is gateway.response.xmldoc's, the same as for answers: UTF-8 only, no DTD, no entities. Only
this check reads an XML request body, so it is parsed once, here, from the
gateway.upstream.bodies.RequestBody every check shares.
"""

from __future__ import annotations

import re
from typing import Any

from gateway import fieldpath
from gateway.declared import BodyContract
from gateway.errors import BadRequest, Forbidden
from gateway.response import xmldoc
from gateway.upstream.bodies import RequestBody, UnsupportedMedia

# The declared shape of a call body: element name -> the shape inside it, None at a call element.
_Shape = dict[str, "_Shape | None"]


def media_is_xml(content_type: str | None) -> bool:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime in ("application/xml", "text/xml") or (mime.startswith("application/") and mime.endswith("+xml"))


def calls(body: RequestBody, contract: BodyContract) -> list[dict[str, Any]]:
    """The declared call elements of an XML body, each as ``{parameter: value}``; raises the refusal."""
    content_type = body.content_type
    if not media_is_xml(content_type):
        raise UnsupportedMedia("body-media-undeclared", detail=f"{content_type!r}: this endpoint takes XML")
    params = _params(content_type or "")
    if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise BadRequest("body-unreadable", detail=f"charset of {content_type!r}: UTF-8 only")
    try:
        doc = xmldoc.load(body.raw)
    except xmldoc.XmlRefused as exc:
        raise BadRequest("body-unreadable", detail=f"XML body: {exc}") from None
    wanted: _Shape = {}  # the declared shape: name -> {...} along the way, None at a call
    for text in contract.records:
        node = wanted
        *head, (last, _) = fieldpath.parse(text)
        for key, _ in head:
            inner = node.setdefault(key, {})
            # None: a call declared inside another call, which the catalogue should have refused
            assert inner is not None, f"body records: {text!r} lies inside another declared call"
            node = inner
        node[last] = None
    found: list[dict[str, Any]] = []
    _match(doc.root, wanted, found, "")
    action = params.get("action")
    if action is not None:
        names = {text.rsplit(".", 1)[-1] for text in contract.records}
        if re.split(r"[/#:]", action.rstrip("/"))[-1] not in names:
            raise Forbidden("body-undeclared", detail=f"SOAP action {action!r} is not {sorted(names)}")
    return found


def _match(value: Any, wanted: _Shape, found: list[dict[str, Any]], where: str) -> None:
    if type(value) is str and not value.strip():  # an element with nothing but whitespace inside
        value = {}
    if type(value) is not dict:
        raise BadRequest("body-unreadable", detail=f"XML body: <{where or 'root'}> holds no elements")
    for key in value:
        if key not in wanted:
            raise Forbidden("body-undeclared", detail=f"XML body: <{key}> in <{where or 'root'}> is not declared")
    for key, inner in wanted.items():
        if key not in value:
            raise BadRequest("body-unreadable", detail=f"XML body: no <{key}> in <{where or 'root'}>")
        child = value[key]
        if type(child) is list:
            raise Forbidden("body-undeclared", detail=f"XML body: <{key}> more than once")
        if inner is None:
            if type(child) is str and not child.strip():
                child = {}
            if type(child) is not dict:
                raise BadRequest("body-unreadable", detail=f"XML body: <{key}> is not a call")
            found.append(child)
        else:
            _match(child, inner, found, key)


def _params(content_type: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        out[name.strip().lower()] = value.strip().strip('"').strip()
    return out
