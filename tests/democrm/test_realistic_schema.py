"""The realistic profile publishes its OpenAPI document at GET /api/v2/schema/, and the document
describes exactly the JSON routes the app serves (so a catalogue drafted from it is complete)."""

from __future__ import annotations

import yaml

from democrm.realistic import create_realistic_app
from democrm.realistic.schema import DOCUMENT

from .conftest import AS_ALICE

NOT_DESCRIBED = ("/api/v2/schema/", "/api/v2/xml/", "/soap/")  # itself, and the XML faces (xmlviews.py)


async def test_the_schema_is_served_as_yaml_or_json_to_logged_in_callers(realistic):
    resp = await realistic.get("/api/v2/schema/", headers=AS_ALICE)
    assert resp.status == 200 and resp.content_type == "application/vnd.oai.openapi"
    assert yaml.safe_load(await resp.text()) == yaml.safe_load(DOCUMENT.read_text())
    resp = await realistic.get("/api/v2/schema/?format=json", headers=AS_ALICE)
    assert resp.status == 200 and (await resp.json())["openapi"].startswith("3.")
    assert (await realistic.get("/api/v2/schema/")).status == 401


def test_the_document_describes_every_json_route_and_no_other():
    app = create_realistic_app(leads=1, accounts=1)
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and not route.resource.canonical.startswith(NOT_DESCRIBED)
    }
    doc = yaml.safe_load(DOCUMENT.read_text())
    described = {
        (method.upper(), path) for path, item in doc["paths"].items() for method in item if method != "parameters"
    }
    assert described == served
