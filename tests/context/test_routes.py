"""Templates, expansion of lookup URLs and safe encoding of ids read from request bodies."""

from __future__ import annotations

import pytest

from gateway.context.routes import Router, TemplateError, encode_segment, expand, parse_template


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


# --- typed parameters and trailing slashes (issue 10) ---------------------------------------------

UUID = "28f23903-8a21-59d9-9e07-160d90600eaa"


def typed_router(**options) -> Router[str]:
    import re

    router: Router[str] = Router({"code": re.compile(r"[A-Z]{3}-[0-9]+")}, **options)
    for template, name in [
        ("/leads/{id:uuid}/", "view"),
        ("/leads/kanban/", "kanban"),
        ("/leads/{n:int}/", "by-number"),
        ("/leads/{code:code}/", "by-code"),
        ("/leads/{slug:slug}/", "by-slug"),
        ("/leads/{any}/", "anything"),
    ]:
        assert router.add("GET", router.parse(template), name) is None
    return router


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (f"/leads/{UUID}/", "view"),
        (f"/leads/{UUID.upper()}/", "view"),
        ("/leads/kanban/", "kanban"),
        ("/leads/42/", "by-number"),
        ("/leads/ABC-12/", "by-code"),
        ("/leads/big-deal_2/", "by-slug"),
        ("/leads/a.b/", "anything"),
    ],
)
def test_a_literal_wins_then_int_uuid_patterns_slug_then_any(path, name):
    assert typed_router().match("GET", path)[0] == name


def test_a_uuid_parameter_never_takes_a_literal_sub_resource():
    router: Router[str] = Router()
    router.add("GET", parse_template("/leads/{id:uuid}/"), "view")
    for path in ("/leads/kanban/", "/leads/duplicates/", "/leads/28f23903-8a21-59d9-9e07-160d90600ea/"):
        assert router.match("GET", path) is None


def test_trailing_slash_either_matches_both_spellings():
    exact, either = typed_router(), typed_router(trailing_slash="either")
    assert exact.match("GET", "/leads/kanban") is None
    assert either.match("GET", "/leads/kanban")[0] == "kanban"
    assert either.match("GET", f"/leads/{UUID}") == ("view", {"id": UUID})


def test_unknown_parameter_types_are_refused_and_patterns_are_types():
    with pytest.raises(TemplateError):
        parse_template("/a/{id:guid}")
    assert parse_template("/a/{id:code}", ["code"]).segments[-1] == ("code", "id")


def test_expand_checks_builtin_types():
    with pytest.raises(ValueError):
        expand(parse_template("/leads/{id:uuid}/"), {"id": "kanban"})
    assert expand(parse_template("/leads/{id:uuid}/"), {"id": UUID}) == f"/leads/{UUID}/"
