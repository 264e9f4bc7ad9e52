"""``GET /api/v2/schema/``: the realistic profile's OpenAPI document, as drf-spectacular serves one.

The document (``openapi.yaml`` beside this module) is what ``crmgw catalogue draft --openapi`` reads
to start a catalogue for this CRM. YAML by default, JSON with ``?format=json`` (drf-spectacular's
two renderers). It needs the same login as every other route: a CRM's schema tells an attacker
where everything is.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

DOCUMENT = Path(__file__).with_name("openapi.yaml")


@functools.cache
def document_text() -> str:
    return DOCUMENT.read_text(encoding="utf-8")


@functools.cache
def document() -> dict[str, Any]:
    loaded = yaml.safe_load(document_text())
    if not isinstance(loaded, dict):
        raise ValueError(f"{DOCUMENT} is not an OpenAPI document (a YAML mapping)")
    return loaded


async def schema(request: web.Request) -> web.Response:
    if request.query.get("format") == "json":
        return web.Response(body=orjson.dumps(document()), content_type="application/vnd.oai.openapi+json")
    return web.Response(text=document_text(), content_type="application/vnd.oai.openapi", charset="utf-8")


def schema_routes() -> list[web.RouteDef]:
    return [web.get("/api/v2/schema/", schema)]
