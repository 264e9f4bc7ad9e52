"""A request body as the gateway received it, read the one way the CRM will read it, or refused.

A write is decided from its body before the CRM sees it, so the gateway must not read a body
differently from the CRM. Three media types are understood, each strictly:

    json        orjson (strict UTF-8, no NaN, no trailing data), then a second pass that refuses
                duplicate keys: ``{"owner_id": "bob", "owner_id": "alice"}`` is "alice" to
                orjson and Python but "bob" to first-wins parsers
    form        application/x-www-form-urlencoded, UTF-8; ``owner[email]=x`` (PHP/Rails style) is
                the object ``{"email": "x"}`` under ``owner``, ``owner[]=x`` a list item
    multipart   multipart/form-data; parts with a name, no transfer encoding, no RFC 2231 names;
                a file part is a :data:`FILE` value (never an owner)

A form or multipart body is one record: ``{key: value or [values]}``. ``_method`` in a form is a
method override and is refused, like the X-HTTP-Method-Override header.

The pipeline wraps the bytes it read in one :class:`RequestBody` and hands that same value to every
check (the body contract, the count and lookup of a bulk write's targets, the four-eyes gate), so the
body is parsed at most once, by the first check that needs it, and a body no check reads (an
unrestricted caller's plain create) is never parsed at all. The checks themselves are
gateway.response's (writes, write_targets, xmlcall): this module reads, it does not decide.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gateway.errors import BadRequest

FILE = object()  # the value of a multipart file part: content the gateway does not interpret
_BRACKETS = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class UnsupportedMedia(BadRequest):
    status = 415
    error = "unsupported-media-type"


def media_of(content_type: str | None) -> str | None:
    """``json`` / ``form`` / ``multipart`` for a Content-Type, None for anything else."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json")):
        return "json"
    if mime == "application/x-www-form-urlencoded":
        return "form"
    if mime == "multipart/form-data":
        return "multipart"
    return None


def _charset_ok(content_type: str | None) -> bool:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


@dataclasses.dataclass(frozen=True)
class RequestBody:
    """The bytes a client sent (exactly what is forwarded) with their Content-Type, parsed on demand.

    Frozen, and its parse is cached on the instance: every check sees the same document, and a
    parse error is the same refusal whichever check meets it first.
    """

    raw: bytes = b""
    content_type: str | None = None

    @property
    def media(self) -> str | None:
        """``json`` / ``form`` / ``multipart`` (see :func:`media_of`), None for anything else."""
        return media_of(self.content_type)

    def read(self, accepted: tuple[str, ...]) -> tuple[str, Any]:
        """``(media, data)`` for an endpoint that takes ``accepted`` media: the media type and the
        charset are refused first, then what :meth:`data` refuses."""
        media = self.media
        if media is None or media not in accepted:
            raise UnsupportedMedia("body-media-undeclared", detail=f"{self.content_type!r} not in {list(accepted)}")
        if not _charset_ok(self.content_type):
            raise BadRequest("body-unreadable", detail=f"charset of {self.content_type!r}: UTF-8 only")
        return media, self.data()

    def data(self) -> Any:
        """The JSON document, or the one record of a form/multipart body; raises the parse error."""
        data, refused = self._parsed
        if refused is not None:
            raise refused
        return data

    @functools.cached_property
    def _parsed(self) -> tuple[Any, BadRequest | None]:
        # cached_property writes the instance __dict__ directly, so it works on a frozen dataclass.
        try:
            return _parse(self.media, self.raw, self.content_type), None
        except BadRequest as exc:
            return None, exc


def _parse(media: str | None, body: bytes, content_type: str | None) -> Any:
    if media == "json":
        return load_json(body)
    if media == "form":
        try:
            text = body.decode("utf-8")
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("body-unreadable", detail="form body is not UTF-8 key=value pairs") from None
        return _record(pairs)
    if media == "multipart":
        return _record(_multipart_pairs(body, content_type or ""))
    raise UnsupportedMedia("body-media-undeclared", detail=f"{content_type!r} is not a body the gateway reads")


def load_json(body: bytes) -> Any:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body-invalid-json") from None
    if body.count(b":") > 1:  # a single key cannot repeat: skip the second pass
        json.loads(body, object_pairs_hook=_refuse_duplicate_keys)
    return data


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise BadRequest("body-ambiguous", detail=f"JSON key {key!r} given more than once")
        obj[key] = value
    return obj


def _record(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Form pairs as one record: ``a=1&a=2`` -> ``{"a": ["1", "2"]}``, ``o[id]=x`` -> ``{"o": {"id": "x"}}``."""
    record: dict[str, list[Any]] = {}
    for raw_key, value in pairs:
        m = _BRACKETS.match(raw_key)
        if not m:
            raise BadRequest("body-unreadable", detail=f"form key {raw_key[:60]!r}")
        key, brackets = m.group(1), m.group(2)
        if key == "_method":
            raise BadRequest("method-override-refused", detail="_method in the body")
        inner = [part for part in brackets[1:-1].split("][") if part and not part.isdigit()] if brackets else []
        record.setdefault(key, []).append({inner[-1]: value} if inner else value)
    return {key: values[0] if len(values) == 1 else values for key, values in record.items()}


def _multipart_pairs(body: bytes, content_type: str) -> list[tuple[str, Any]]:
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise BadRequest("body-unreadable", detail="not a well-formed multipart body")
    pairs: list[tuple[str, Any]] = []
    for part in message.iter_parts():
        raw_disposition = " ".join(v for k, v in part.raw_items() if k.lower() == "content-disposition")
        if part.defects or part.is_multipart() or "*=" in raw_disposition:  # RFC 2231 names differ by parser
            raise BadRequest("body-unreadable", detail="multipart part the gateway cannot read as the CRM would")
        if part.get("Content-Transfer-Encoding", "7bit").lower() not in ("7bit", "8bit", "binary"):
            raise BadRequest("body-unreadable", detail="multipart part with a transfer encoding")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise BadRequest("body-unreadable", detail="multipart part without a name")
        if part.get_filename() is not None:
            pairs.append((name, FILE))
            continue
        payload = part.get_payload(decode=True)  # bytes (or None when empty): the part is not multipart
        if not isinstance(payload, bytes):
            payload = b""
        try:
            pairs.append((name, payload.decode("utf-8")))
        except UnicodeDecodeError:
            raise BadRequest("body-unreadable", detail=f"multipart field {name!r} is not UTF-8") from None
    return pairs
