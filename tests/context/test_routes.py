"""Templates, expansion of lookup URLs and safe encoding of ids read from request bodies."""

from __future__ import annotations

import pytest

from gateway.context.routes import Router, encode_segment, expand, parse_template


def test_template_key_and_params_drop_types():
    template = parse_template("/api/customers/{id:int}/notes/{note}")
    assert template.params == ("id", "note")
    assert template.key == "/api/customers/{id}/notes/{note}"


def test_root_and_trailing_slash_templates_match_exactly():
    router: Router[str] = Router()
    router.add("GET", parse_template("/"), "root")
    router.add("GET", parse_template("/a/"), "a-slash")
    assert router.match("GET", "/") == ("root", {})
    assert router.match("GET", "/a/") == ("a-slash", {})
    assert router.match("GET", "/a") is None


def test_parameter_never_matches_an_empty_segment():
    router: Router[str] = Router()
    router.add("GET", parse_template("/a/{id}"), "view")
    assert router.match("GET", "/a/") is None


def test_add_returns_the_clashing_value_for_the_same_shape():
    router: Router[str] = Router()
    assert router.add("GET", parse_template("/a/{id}"), "first") is None
    assert router.add("GET", parse_template("/a/{other}"), "second") == "first"
    assert router.add("GET", parse_template("/a/{id:int}"), "typed") is None


EXPANSIONS = [
    ({"id": "42"}, "/api/customers/42"),
    ({"id": 42}, "/api/customers/42"),
]


@pytest.mark.parametrize(("params", "path"), EXPANSIONS)
def test_expand_builds_the_lookup_path(params, path):
    assert expand(parse_template("/api/customers/{id:int}"), params) == path


BAD_INT_VALUES = ["4a", "", "-1", "1/2", "../1", True, 1.5, None]


@pytest.mark.parametrize("value", BAD_INT_VALUES)
def test_expand_refuses_values_that_are_not_an_int_segment(value):
    with pytest.raises(ValueError):
        expand(parse_template("/api/customers/{id:int}"), {"id": value})


BAD_SEGMENTS = ["", ".", "..", "a/b", "a?b", "a%2Fb", "a%41", "a b", "%zz", "é"]


@pytest.mark.parametrize("value", BAD_SEGMENTS)
def test_expand_refuses_values_that_are_not_one_canonical_segment(value):
    with pytest.raises(ValueError):
        expand(parse_template("/api/things/{key}"), {"key": value})


def test_expand_requires_every_parameter():
    with pytest.raises(ValueError, match="no value"):
        expand(parse_template("/api/things/{key}"), {})


ENCODED = [
    (7, "7"),
    ("abc", "abc"),
    ("é", "%C3%A9"),
    ("a b", "a%20b"),
    ("a.b", "a.b"),
    ("A+1", "A+1"),
]


@pytest.mark.parametrize(("raw", "segment"), ENCODED)
def test_encode_segment_makes_a_canonical_segment(raw, segment):
    assert encode_segment(raw) == segment
    assert expand(parse_template("/x/{v}"), {"v": encode_segment(raw)}) == "/x/" + segment


@pytest.mark.parametrize("raw", ["", ".", "..", "a/b", "a\\b", "a;b", "a%b", "a\x00", True, None, 1.0])
def test_encode_segment_refuses_what_could_leave_the_segment(raw):
    with pytest.raises(ValueError):
        encode_segment(raw)
