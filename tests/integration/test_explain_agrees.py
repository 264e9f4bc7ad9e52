"""``crmgw explain`` and the live gateway give the same refusal for every request-side check."""

from __future__ import annotations

import json
import subprocess
import sys

import orjson
import pytest

from gateway.explain import explain
from gateway.rulestore import RuleStore
from tests.conftest import REPO, RULES
from tests.integration.conftest import auth

CASES = [
    # user, method, target, body or None, content type
    ("carol", "POST", "/api/deals", {"title": "gift", "assigned_to": ["bob"]}, "application/json"),
    ("carol", "POST", "/api/customers", {"name": "P", "owner_id": "nobody"}, "application/json"),
    ("carol", "POST", "/api/customers", {"name": "P", "created_by": "bob"}, "application/json"),
    ("carol", "POST", "/api/customers", b"name=P&owner_id=bob", "application/x-www-form-urlencoded"),
    ("carol", "GET", "/api/customers?include=users", None, None),
    ("carol", "GET", "/api/customers?page_size=abc", None, None),
    ("dave", "DELETE", "/api/customers/6", {"cascade": True}, "application/json"),
    ("dave", "POST", "/api/customers", {"name": "P", "owner_id": "carol"}, "application/json"),
    ("frank", "GET", "/api/customers?expand=owner", None, None),
]


def encoded(body) -> bytes:
    return b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body)


@pytest.mark.parametrize(("user", "method", "target", "body", "ctype"), CASES)
async def test_explain_and_the_gateway_refuse_alike(gw, clock, user, method, target, body, ctype):
    headers = {**auth(user, ip="10.1.2.3"), **({"Content-Type": ctype} if ctype else {})}
    resp = await gw.request(method, target, data=encoded(body), headers=headers)
    live = await resp.json()
    store, _ = RuleStore.open(RULES)
    told = explain(
        store.current,
        user=user,
        method=method,
        path=target,
        at=clock(),
        ip="10.1.2.3",
        body=encoded(body),
        content_type=ctype,
    ).decision
    assert (told.effect, told.reason, told.status) == ("deny", live["reason"], resp.status)


@pytest.mark.slow
def test_the_explain_command_takes_a_body():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "explain",
            "--user",
            "carol",
            "--method",
            "POST",
            "--path",
            "/api/deals",
            "--at",
            "2026-03-03T10:00:00+01:00",
            "--ip",
            "10.1.2.3",
            "--body",
            '{"title": "gift", "assigned_to": ["bob"]}',
            "--json",
            "--exit-code",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    assert json.loads(run.stdout)["reason"] == "write-out-of-scope"
