"""Issue 11, item 8: /favicon.ico and /robots.txt are answered by the gateway (gateway.browserfiles),
without an audit line and without reaching the CRM -- unless the catalogue declares them."""

from __future__ import annotations

import json

import pytest

from democrm.app import REQUESTS_SEEN
from tests.integration.conftest import auth


def audit(tmp_path) -> list[dict]:
    path = tmp_path / "audit.log"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def crm_paths(crm) -> list[str]:
    return [seen.raw_path for seen in crm.app[REQUESTS_SEEN]]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_favicon_and_robots_are_answered_unaudited_and_never_forwarded(gw, crm, tmp_path, method):
    for headers in ({}, auth("alice")):  # a browser sends no credentials; a logged-in page may
        favicon = await gw.request(method, "/favicon.ico", headers=headers)
        assert favicon.status == 204 and "max-age" in favicon.headers["Cache-Control"]
        robots = await gw.request(method, "/robots.txt?x=1", headers=headers)
        assert robots.status == 200 and robots.content_type == "text/plain"
        if method == "GET":
            assert await robots.text() == "User-agent: *\nDisallow: /\n"
    assert audit(tmp_path) == []
    # the rest is untouched: an unauthenticated request is still a 401, audited; an allowed one is
    # forwarded -- and is the only request the CRM ever saw
    assert (await gw.get("/api/customers")).status == 401
    assert (await gw.get("/api/customers/1", headers=auth("frank"))).status == 200
    assert [line["reason"] for line in audit(tmp_path)] == ["unauthenticated", "allowed"]
    assert crm_paths(crm) == ["/api/customers/1"]


async def test_other_methods_on_those_paths_go_through_the_pipeline(gw, tmp_path):
    resp = await gw.post("/favicon.ico", headers=auth("alice"))
    assert resp.status == 403
    (line,) = audit(tmp_path)
    assert line["path"] == "/favicon.ico" and line["effect"] == "deny" and line["reason"] == "operation-unknown"


async def test_a_catalogued_robots_txt_is_decided_and_forwarded_like_any_operation(
    make_gateway, crm, rules_copy, tmp_path
):
    """A CRM that serves its own /robots.txt: the admins catalogue it, and the gateway steps aside."""
    operations = rules_copy / "operations.yaml"
    text = operations.read_text()
    anchor = "\nendpoints:\n"
    operations.write_text(
        text.replace(anchor, anchor + "  - {method: GET, path: /robots.txt, operation: admin.admin, records: []}\n", 1)
    )
    gw = await make_gateway(crm, rules=rules_copy)
    resp = await gw.get("/robots.txt", headers=auth("grace", mfa=True))
    assert resp.status != 204 and "User-agent" not in await resp.text()  # the CRM's answer (democrm: 404)
    assert "/robots.txt" in crm_paths(crm)
    (line,) = audit(tmp_path)
    assert line["operation"] == "admin.admin" and line["effect"] == "allow"
    assert (await gw.get("/favicon.ico")).status == 204  # not catalogued: still the gateway's
    assert len(audit(tmp_path)) == 1
