"""normalise_target / parse_query: one reading of the request target, or a 400."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from gateway.context.normalise import normalise_target, parse_query
from gateway.errors import AmbiguousRequest

ACCEPTED = [
    # (raw target, normalised path, raw query)
    ("/", "/", ""),
    ("/api/customers", "/api/customers", ""),
    ("/api/customers/", "/api/customers/", ""),  # trailing slash kept; the catalogue decides
    ("/api/customers/42", "/api/customers/42", ""),
    ("/api/customers?page=2&page_size=10", "/api/customers", "page=2&page_size=10"),
    ("/api/customers?", "/api/customers", ""),
    ("/api/customers?q=a%2Fb%3Bc", "/api/customers", "q=a%2Fb%3Bc"),  # query forwarded raw
    ("/api/customers/export.csv", "/api/customers/export.csv", ""),
    ("/api/%41pi/customers", "/api/Api/customers", ""),  # unreserved escapes decoded
    ("/api/customers/%34%32", "/api/customers/42", ""),
    ("/api/customers/export%2dcsv", "/api/customers/export-csv", ""),
    ("/api/%7e%5F", "/api/~_", ""),
    ("/api/customers/%c3%a9", "/api/customers/%C3%A9", ""),  # UTF-8 kept encoded, upper hex
    ("/api/customers/%E2%82%AC", "/api/customers/%E2%82%AC", ""),
    ("/api/customers/%2b1", "/api/customers/%2B1", ""),  # encoded sub-delim stays encoded
    ("/api/customers/+1", "/api/customers/+1", ""),
    ("/api/customers/%20x", "/api/customers/%20x", ""),
    ("/api/a:b@c!$&'()*,=", "/api/a:b@c!$&'()*,=", ""),
    ("/api/{x}", "/api/%7Bx%7D", ""),  # raw chars that must be encoded get encoded
    ('/api/"q"|<>', "/api/%22q%22%7C%3C%3E", ""),
    ("/api/...", "/api/...", ""),  # three dots is a name, not a dot segment
    ("/api/.hidden", "/api/.hidden", ""),
    ("/api/a..b", "/api/a..b", ""),
]


@pytest.mark.parametrize(("raw", "path", "query"), ACCEPTED)
def test_accepted_targets_normalise_to_one_form(raw, path, query):
    assert normalise_target(raw) == (path, query)


REFUSED = [
    # (raw target, reason)
    ("", "path-ambiguous"),
    ("http://crm.example.com/api/customers", "target-absolute-form"),
    ("HTTPS://crm/api", "target-absolute-form"),
    ("crm.example.com:443", "target-absolute-form"),
    ("*", "path-ambiguous"),
    ("api/customers", "path-ambiguous"),
    ("//evil.example.com/api", "path-ambiguous"),
    ("/api//customers", "path-ambiguous"),
    ("/api/customers//", "path-ambiguous"),
    ("/api/customers/%2f..", "path-ambiguous"),
    ("/api/customers%2F1", "path-ambiguous"),
    ("/api/customers%5c1", "path-ambiguous"),
    ("/api/customers/%2e%2e/admin", "path-ambiguous"),
    ("/api/customers/%2E", "path-ambiguous"),
    ("/api/customers/export%2ecsv", "path-ambiguous"),
    ("/api/customers/1%3bx", "path-ambiguous"),
    ("/api/customers/1%3Fx", "path-ambiguous"),
    ("/api/customers/1%23x", "path-ambiguous"),
    ("/api/customers/%252f", "path-ambiguous"),  # double encoding
    ("/api/customers/%25", "path-ambiguous"),
    ("/api/./customers", "path-ambiguous"),
    ("/api/../admin/users", "path-ambiguous"),
    ("/api/customers/..", "path-ambiguous"),
    ("/api/customers/.", "path-ambiguous"),
    ("/api\\customers", "path-ambiguous"),
    ("/api/customers;jsessionid=1", "path-ambiguous"),
    ("/api/customers/1;", "path-ambiguous"),
    ("/api/customers/1\x00", "path-ambiguous"),
    ("/api/customers/1%00", "path-ambiguous"),
    ("/api/customers/%0a", "path-ambiguous"),
    ("/api/customers/%1F", "path-ambiguous"),
    ("/api/customers/%7f", "path-ambiguous"),
    ("/api/customers/%C2%85", "path-ambiguous"),  # C1 control NEL
    ("/api/customers/1\r\nX: y", "path-ambiguous"),
    ("/api/customers/\t", "path-ambiguous"),
    ("/api/customers?q=1\x00", "path-ambiguous"),
    ("/api/customers#frag", "path-ambiguous"),
    ("/api/customers?q=#x", "path-ambiguous"),
    ("/api/customers/%", "path-encoding-invalid"),
    ("/api/customers/%4", "path-encoding-invalid"),
    ("/api/customers/%zz", "path-encoding-invalid"),
    ("/api/customers/%c0%af", "path-encoding-invalid"),  # overlong '/'
    ("/api/customers/%e0%80%ae", "path-encoding-invalid"),  # overlong '.'
    ("/api/customers/%c3", "path-encoding-invalid"),  # truncated sequence
    ("/api/customers/%c3x", "path-encoding-invalid"),
    ("/api/customers/%ed%a0%80", "path-encoding-invalid"),  # UTF-16 surrogate
    ("/api/customers/%ff", "path-encoding-invalid"),
    ("/api/customers/é", "path-encoding-invalid"),  # raw non-ASCII
    ("/api/customers?q=é", "path-encoding-invalid"),
    ("/api/customers/a b", "path-encoding-invalid"),
]


@pytest.mark.parametrize(("raw", "reason"), REFUSED)
def test_ambiguous_targets_are_refused_with_reason(raw, reason):
    with pytest.raises(AmbiguousRequest) as info:
        normalise_target(raw)
    assert info.value.reason == reason
    assert info.value.status == 400


@pytest.mark.parametrize(("raw", "path", "query"), ACCEPTED)
def test_normalising_twice_changes_nothing(raw, path, query):
    assert normalise_target(path) == (path, "")


@pytest.mark.parametrize(("raw", "path", "query"), ACCEPTED)
def test_the_crm_sees_the_same_segments_the_gateway_decided_on(raw, path, query):
    # yarl is how an aiohttp CRM decodes the path: the segment count must not change.
    decoded = URL.build(path=path, encoded=True).path
    assert decoded.count("/") == path.count("/")


_TOKENS = st.sampled_from(
    [
        "a",
        "Z",
        "0",
        "9",
        "-",
        ".",
        "_",
        "~",
        "..",
        "%41",
        "%2f",
        "%2e",
        "%c3%a9",
        "%C3",
        "%e2%82%ac",
        "%20",
        "%2B",
        "%7b",
        "+",
        ":",
        "@",
        "!",
        ";",
        "\\",
        "{",
        "|",
        "%",
        "%g1",
        "%00",
        "é",
        "?",
        "?a=1",
        "#",
        " ",
    ]
)
_TARGETS = st.lists(st.lists(_TOKENS, max_size=4).map("".join), min_size=1, max_size=5).map(
    lambda segments: "/" + "/".join(segments)
)


@pytest.mark.slow  # over a second
@settings(max_examples=400, deadline=None)
@given(_TARGETS)
def test_normalise_is_idempotent(raw):
    try:
        path, query = normalise_target(raw)
    except AmbiguousRequest:
        return
    again = path + ("?" + query if query else "")
    assert normalise_target(again) == (path, query)
    assert "//" not in path and "\\" not in path and ";" not in path
    assert all(seg not in (".", "..") for seg in path.split("/"))


QUERIES = [
    ("", {}),
    ("page=2&page_size=10", {"page": "2", "page_size": "10"}),
    ("q=a+b", {"q": "a b"}),
    ("q=a%2Bb", {"q": "a+b"}),
    ("q=%C3%A9", {"q": "é"}),
    ("flag", {"flag": ""}),
    ("a=1&&b=2", {"a": "1", "b": "2"}),
    ("a=&b=x=y", {"a": "", "b": "x=y"}),
    ("A=1&a=2", {"A": "1", "a": "2"}),  # names are case-sensitive
]


@pytest.mark.parametrize(("raw", "expected"), QUERIES)
def test_query_parses_to_single_values(raw, expected):
    assert parse_query(raw) == expected


BAD_QUERIES = [
    "a=1&a=2",
    "a=1&%61=2",  # duplicate after decoding
    "page=1&page",
    "a=1;b=2",
    "a=%00",
    "a=%0d%0a",
    "a=%c0%af",
    "a=%ff",
    "a=%zz",
    "a=%4",
    "=1",
    "a=é",
]


@pytest.mark.parametrize("raw", BAD_QUERIES)
def test_ambiguous_queries_are_refused(raw):
    with pytest.raises(AmbiguousRequest) as info:
        parse_query(raw)
    assert info.value.reason == "query-ambiguous"


def test_fast_path_regex_allows_exactly_the_raw_path_characters():
    from gateway.context.normalise import _PLAIN_SEGMENT, _RAW_OK

    assert {chr(c) for c in range(128) if _PLAIN_SEGMENT.fullmatch(chr(c))} == set(_RAW_OK)
