"""Request bodies of the realistic profile: JSON, urlencoded forms and multipart forms, as one dict.

Real CRMs behind Django REST Framework accept all three, and a gateway that only inspects JSON
misses the others. Form bodies become the dict a JSON body would have been: the list fields
(``assigned_to``, ``teams``, ``ids``) collect every repeated key, PHP style ``assigned_to[]`` and
``assigned_to[0]`` included; any other repeated key keeps its last value, as Django's QueryDict
does. Multipart is parsed from the bytes already read (the request-recording middleware consumed
the stream, so aiohttp's own ``post()`` would see an empty body).
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from democrm.state import CrmError

LIST_FIELDS = frozenset({"assigned_to", "teams", "ids"})
_PHP_SUFFIX = re.compile(r"\[\d*\]$")


class InvalidBody(Exception):
    """A DRF-style validation error: ``{field: [message, ...]}`` answered with 400."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _as_dict(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for raw_key, value in pairs:
        key = _PHP_SUFFIX.sub("", raw_key)
        if key in LIST_FIELDS:
            body.setdefault(key, []).append(value)
        else:
            body[key] = value
    return body


def _multipart_pairs(raw: bytes, content_type: str) -> list[tuple[str, str]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("utf-8", "surrogateescape") + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():
        raise CrmError(400, "Multipart form parse error - Invalid boundary in multipart: None")
    pairs = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename():  # files are not fields; ignored here
            continue
        payload = part.get_payload(decode=True)  # bytes; None for a nested multipart part
        text = payload.decode(part.get_content_charset() or "utf-8", "replace") if isinstance(payload, bytes) else ""
        pairs.append((name, text))
    return pairs


async def request_body(request: web.Request) -> dict[str, Any]:
    """The body as a dict; an empty body is ``{}``. 400/415 for what the CRM cannot read."""
    raw = await request.read()
    if not raw:
        return {}
    content_type = request.content_type
    if content_type == "application/x-www-form-urlencoded":
        try:
            return _as_dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise CrmError(400, "Form body must be UTF-8.") from None
    if content_type == "multipart/form-data":
        return _as_dict(_multipart_pairs(raw, request.headers["Content-Type"]))
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as problem:
            raise CrmError(400, f"JSON parse error - {problem}") from None
        if not isinstance(body, dict):
            kind = {list: "list", str: "str", int: "int", float: "float", bool: "bool"}.get(type(body), "null")
            raise InvalidBody({"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]})
        return body
    raise CrmError(415, f'Unsupported media type "{request.headers.get("Content-Type", "")}" in request.')
