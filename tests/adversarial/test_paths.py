"""Path tricks: what was decided is exactly what the CRM receives, or the request is refused.

Each target is sent verbatim over a socket by an administrator with MFA (every mapped operation is
allowed), so a refusal or a mis-route is the gateway's doing. For every target:

* refused (400, or 403 for an unmapped operation): the CRM stand-in saw nothing;
* forwarded: the stand-in saw exactly one request whose target is the path the audit line says was
  decided (plus the raw query), and every lenient reading of it (double decoding, backslashes,
  ``;`` parameters, NFKC folding, dot segments...) routes to the same operation or to nothing.

Variants come from Envoy's path normalisation tests, Spring Security's StrictHttpFirewall, Tomcat's
CVE-2007-0450/CVE-2020-1938 era path tricks, and the overlong-UTF-8 directory traversals of old IIS.
"""

from __future__ import annotations

import pytest

from gateway.context.normalise import normalise_target
from gateway.errors import AmbiguousRequest
from gateway.ruleset import load_ruleset
from tests.adversarial.conftest import GRACE
from tests.adversarial.readings import lenient_readings
from tests.adversarial.wire import exchange, request
from tests.conftest import RULES

CATALOGUE = load_ruleset(RULES)[0].catalogue

DOT_SEGMENTS = [
    "/api/customers/..",
    "/api/customers/../admin/users",
    "/api/./customers",
    "/api/customers/1/..",
    "/api/customers/1/../../admin/users",
    "/api/customers/%2e%2e/admin/users",
    "/api/customers/%2E%2E/admin/users",
    "/api/customers/.%2e/admin/users",
    "/api/customers/%2e./admin/users",
    "/api/customers/%2e/1",
    "/api/customers/%252e%252e/admin/users",
    "/api/customers/%25%32%65%25%32%65/admin/users",
    "/api/customers/%u002e%u002e/admin/users",
    "/api/customers/..%00/admin/users",
    "/api/customers/..%2500/admin/users",
    "/api/customers/...;/admin/users",
    "/api/customers/..;/admin/users",
    "/api/customers/export%2Ejson",
]
ENCODED_SLASHES = [
    "/api/customers%2f1",
    "/api/customers%2F1",
    "/api%2fadmin%2fusers",
    "/api/customers/1%2f..%2f..%2fadmin%2fusers",
    "/api/customers%252f1",
    "/api/customers%5c1",
    "/api/customers%5C..%5Cadmin",
    "/api\\admin\\users",
    "/api/customers\\1",
    "/api/customers/1\\..\\..\\admin\\users",
    "/api/customers/%c0%af..%c0%afadmin",
]
PATH_PARAMETERS = [
    "/api/customers;x=1",
    "/api/customers/1;jsessionid=abc",
    "/api/admin/users;.json",
    "/api/customers/%3b/1",
    "/api/customers/1%3b",
    "/api;/admin/users",
    "/api/customers/1;/../../admin/users",
]
DUPLICATE_SLASHES = [
    "//api/customers",
    "/api//customers",
    "/api/customers//1",
    "///api/admin/users",
    "/api/customers/1//",
    "/api/customers/%2F/1",
]
AUTHORITY_FORMS = [
    "//evil.example/api/customers",
    "//127.0.0.1:1/api/customers",
    "/\\evil.example/api/customers",
    "http://crm.internal/api/admin/users",
    "http://gateway/api/customers/1",
    "HTTP://crm/api/customers",
    "https://crm/api/customers/1",
    "http:/api/customers",
    "crm.internal:80",
    "*",
    "api/customers",
]
CASE_AND_EXTENSIONS = [
    "/API/customers",
    "/api/Customers/1",
    "/api/CUSTOMERS/export.csv",
    "/api/customers/EXPORT.CSV",
    "/Api/admin/users",
    "/api/customers.csv",
    "/api/customers/1.json",
    "/api/customers/export.csv.gz",
    "/api/customers/export.json/",
    "/api/customers/",
]
NUL_AND_CONTROLS = [
    "/api/customers/1%00",
    "/api/customers%00/../admin/users",
    "/api/customers/1%00.json",
    "/api/customers/1%0d%0aX-CRM-User:%20grace",
    "/api/customers/1%0a",
    "/api/customers/1%09",
    "/api/customers/1%7f",
    "/api/customers/1%c2%85",
]
OVERLONG_AND_INVALID_UTF8 = [
    "/api/customers/%c0%ae%c0%ae/admin/users",
    "/api/%c0%afadmin/users",
    "/api/customers/%e0%80%ae%e0%80%ae/admin/users",
    "/api/customers/%c1%9c",
    "/api/customers/%f0%80%80%ae",
    "/api/customers/%ff",
    "/api/customers/%80",
    "/api/customers/%ed%a0%80",
    "/api/customers/%c3",
    "/api/customers/%zz",
    "/api/customers/%2",
]
LOOK_ALIKES = [
    "/api/customers/%EF%BC%8E%EF%BC%8E/admin/users",  # full-width dots
    "/api/customers/%EF%BC%8Fadmin",  # full-width solidus
    "/api/customers/%E2%80%A4%E2%80%A4/admin/users",  # one dot leader
    "/api/customers/%E2%88%95admin",  # division slash
    "/api/cust%C3%B3mers",
    "/api/%D1%81ustomers",  # Cyrillic es
    "/api/customers/%EF%BC%91",  # full-width digit one: int() reads it as 1
    "/api/customers/%D9%A1",  # Arabic-Indic digit one
    "/api/customers/1%E2%80%8B",  # zero-width space
    "/api/customers/%E2%85%A0",  # Roman numeral one
]
QUERY_AND_FRAGMENT_IN_PATH = [
    "/api/customers%3f/1",
    "/api/customers/1%3Fpage_size=5000",
    "/api/admin/users%23/customers",
    "/api/customers/1%23",
    "/api/customers#/../admin/users",
    "/api/customers/1#",
]
ACCEPTED = [  # what may be forwarded: canonical forms only
    "/api/customers/%31",
    "/api/customers/%31%32",
    "/api/%63ustomers/1",
    "/api/customers?page_size=5",
    "/api/customers/1?x=%2e%2e%2f",
    "/api/customers/export.csv",
    "/api/customers/0001",
    "/api/deals",
    "/api/admin/users",
]
ALL = (
    DOT_SEGMENTS
    + ENCODED_SLASHES
    + PATH_PARAMETERS
    + DUPLICATE_SLASHES
    + AUTHORITY_FORMS
    + CASE_AND_EXTENSIONS
    + NUL_AND_CONTROLS
    + OVERLONG_AND_INVALID_UTF8
    + LOOK_ALIKES
    + QUERY_AND_FRAGMENT_IN_PATH
    + ACCEPTED
)


def decided(target: str):
    """What the gateway's own functions make of the target: (path, query, endpoint match) or None."""
    try:
        path, query = normalise_target(target)
    except AmbiguousRequest:
        return None
    return path, query, CATALOGUE.match("GET", path)


def same_route(match_a, match_b) -> bool:
    if match_a is None or match_b is None:
        return match_a is match_b
    return match_a[0].operation == match_b[0].operation and dict(match_a[1]) == dict(match_b[1])


@pytest.mark.parametrize("target", ALL)
async def test_decided_is_forwarded_or_refused(gw, standin, audit_lines, target):
    answer = await exchange(gw.port, request(target, GRACE))
    if answer.status in (400, 403, 404):
        assert standin.seen == [], (target, answer.status)
        return
    assert answer.status == 200, (target, answer.status, answer.body[:200])
    (seen,) = standin.seen
    line = audit_lines()[-1]
    assert line["effect"] == "allow"
    expected = decided(target)
    assert expected is not None, "forwarded a target the normaliser refuses"
    path, query, match = expected
    assert seen.target == path + ("?" + query if query else "")
    assert line["path"] == path and line["operation"] == match[0].operation
    for reading in lenient_readings(seen.path):
        lenient = CATALOGUE.match("GET", reading)
        assert lenient is None or same_route(lenient, match), (seen.path, reading)


@pytest.mark.parametrize("target", ACCEPTED)
async def test_canonical_targets_are_served(gw, standin, target):
    answer = await exchange(gw.port, request(target, GRACE))
    assert answer.status == 200 and len(standin.seen) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"/api/customers/\xc0\xae\xc0\xae/admin/users",
        b"/api/customers/\xef\xbc\x91",
        b"/api/customers/1\x00",
        b"/api/customers/1\x01",
        b"/api/customers/\xff",
    ],
)
async def test_raw_bytes_in_the_request_line_never_reach_the_crm(gw, standin, raw):
    answer = await exchange(gw.port, request(raw, GRACE))
    assert answer.status in (400, 403) and standin.seen == []


@pytest.mark.parametrize("header", ["X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Forwarded-Prefix"])
async def test_rewrite_headers_do_not_reach_the_crm(gw, standin, header):
    answer = await exchange(gw.port, request("/api/customers/1", {**GRACE, header: "/api/admin/users"}))
    assert answer.status == 200
    assert standin.seen[0].headers(header) == []
