"""Path normalisation: one canonical form, stable, and the form the CRM receives byte for byte.

* normalise(normalise(p)) == normalise(p);
* a canonical path holds nothing a lenient server could re-read as structure (no empty or dot
  segments, no ``;``, no encoded ``/ \\ . ; ? # %``, no controls), and every lenient reading of it
  routes to the same catalogue entry as the path itself;
* what the gateway forwards (``upstream_url``) is exactly the decided path plus the raw query;
* parse_query and the CRM's own query parser (yarl/multidict, as aiohttp reads it) agree on every
  query the gateway accepts;
* nothing but AmbiguousRequest ever comes out of either function (the fuzz run).
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from gateway.context.normalise import normalise_target, parse_query
from gateway.errors import AmbiguousRequest
from gateway.ruleset import load_ruleset
from gateway.upstream.forward import upstream_url
from tests.adversarial.readings import lenient_readings
from tests.conftest import RULES

CATALOGUE = load_ruleset(RULES)[0].catalogue

# Pieces attackers combine: separators, dots, escapes (good, bad, overlong), look-alikes.
PIECES = st.sampled_from(
    [
        "/",
        "//",
        ".",
        "..",
        "%2e",
        "%2E",
        "%2f",
        "%2F",
        "%5c",
        "\\",
        ";",
        "%3b",
        "?",
        "%3f",
        "#",
        "%23",
        "%00",
        "%25",
        "%252e",
        "%c0%ae",
        "%c0%af",
        "%ef%bc%8e",
        "%e2%80%a4",
        "%41",
        "%7e",
        "%ff",
        "%2",
        "%zz",
        "api",
        "customers",
        "admin",
        "users",
        "export.csv",
        "1",
        "42",
        "%31",
        "~",
        "-",
        "_",
        "+",
        " ",
        "\x00",
        "\t",
        "é",
        "{",
        "}",
        "|",
        "^",
        "`",
        "<",
        ">",
        '"',
        "'",
        ":",
        "@",
        "!",
        "$",
        "&",
        "(",
        ")",
        "*",
        ",",
        "=",
    ]
)
TARGETS = st.builds(lambda parts: "/" + "".join(parts), st.lists(PIECES, max_size=12)) | st.text(max_size=40)
CANONICAL_BAD = re.compile(r"//|/\.\.?(/|$)|;|\\|%(2[eEfF]|5[cC]|3[bBfF]|23|25|[01][0-9a-fA-F]|7[fF])|[^\x21-\x7e]")


def accepted(target: str):
    try:
        return normalise_target(target)
    except AmbiguousRequest:
        return None


@given(TARGETS)
def test_normalise_is_idempotent(target):
    result = accepted(target)
    if result is not None:
        path, _ = result
        assert normalise_target(path) == (path, "")


@given(TARGETS)
def test_canonical_paths_hold_no_structure_a_lenient_server_could_reread(target):
    result = accepted(target)
    if result is None:
        return
    path, _ = result
    assert path.startswith("/") and not CANONICAL_BAD.search(path), path
    match = CATALOGUE.match("GET", path)
    for reading in lenient_readings(path):
        other = CATALOGUE.match("GET", reading)
        if match is None:
            # Unmapped (denied) paths are never forwarded; a lenient reading may still be a route,
            # but only one the same percent-decoding maps to an endpoint on its own merits.
            continue
        assert other is None or (other[0].operation, dict(other[1])) == (match[0].operation, dict(match[1]))


@given(TARGETS)
def test_forwarded_url_is_the_decided_path_and_raw_query(target):
    result = accepted(target)
    if result is None:
        return
    path, query = result
    url = upstream_url("http://crm.internal:8081", path, query)
    assert url.raw_path == path
    assert url.raw_path_qs == path + ("?" + query if query else "")


QUERY_PIECES = st.sampled_from(
    [
        "page_size",
        "page",
        "a",
        "_method",
        "%5Fmethod",
        "page%5Fsize",
        "=",
        "&",
        "&&",
        ";",
        "+",
        "%2B",
        "%20",
        "%00",
        "%ff",
        "%c3%a9",
        "%2",
        "1",
        "200",
        "5000",
        "x",
        "%3D",
        "%26",
        "é",
        "[]",
        "%5B%5D",
    ]
)
QUERIES = st.builds("".join, st.lists(QUERY_PIECES, max_size=10)) | st.text(max_size=30)


@given(QUERIES)
def test_gateway_and_crm_read_the_same_query(raw_query):
    try:
        ours = parse_query(raw_query)
    except AmbiguousRequest:
        return
    theirs = URL.build(path="/", query_string=raw_query, encoded=True).query
    assert len(theirs.keys()) == len(set(theirs.keys())), "a duplicated parameter was accepted"
    assert {k: v for k, v in theirs.items() if k} == ours


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_normaliser_and_query_parser_never_crash(text):
    for fn in (normalise_target, parse_query):
        try:
            fn(text)
        except AmbiguousRequest:
            pass
