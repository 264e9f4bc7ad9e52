"""Strict YAML: duplicate keys, aliases, formats and locations for every problem."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.rulefile import FORMAT, StrictModel, load_yaml, parse_yaml, validate, validate_at

ROOT = Path(__file__).resolve().parents[2]


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str
    name: str
    size: int = 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\na: 2\n", "t.yaml:2:1: duplicate key 'a' (first defined at line 1)"),
        ("a: &x [1]\nb: *x\n", "t.yaml:1:4: YAML anchors and aliases are not allowed in rule files"),
        ("a: [1, 2\n", "t.yaml:2:1: YAML syntax error"),
        ("? [1]\n: 2\n", "t.yaml:1:3: keys must be strings"),
        ("a: {<<: {b: 1}}\n", "merge keys"),
        ("", "t.yaml:1:1: file is empty"),
    ],
)
def test_parse_problems_carry_file_line_col(text, expected):
    _, errors = parse_yaml(text, "t.yaml")
    assert any(expected in str(e) for e in errors), errors


def test_timestamps_stay_strings():
    doc, errors = parse_yaml("until: 2026-12-31T18:00:00+01:00\n", "t.yaml")
    assert not errors and doc.data["until"] == "2026-12-31T18:00:00+01:00"


def test_locations_point_at_nested_values():
    doc, _ = parse_yaml("a:\n  b:\n    - x\n    - y\n", "t.yaml")
    assert doc.loc(("a", "b", 1)) == (4, 7)
    assert doc.loc(("a", "missing", 3)) == (2, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: x\n", "unknown or missing format None"),
        ("format: crmgw.rules/v9\nname: x\n", "unknown or missing format 'crmgw.rules/v9'"),
        ("- 1\n", "top level must be a mapping"),
    ],
)
def test_load_yaml_requires_the_format_version(tmp_path, content, message):
    f = tmp_path / "x.yaml"
    f.write_text(content)
    doc, errors = load_yaml(f, "x.yaml")
    assert doc is None and any(message in e.message for e in errors)


def test_load_yaml_refuses_invalid_utf8(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_bytes(b"format: crmgw.rules/v1\nname: \xff\n")
    doc, errors = load_yaml(f, "x.yaml")
    assert doc is None and "not valid UTF-8" in errors[0].message


def test_validate_reports_unknown_keys_at_the_key_and_all_at_once():
    doc, _ = parse_yaml(f"format: {FORMAT}\nname: x\nsize: big\ncolour: red\n", "t.yaml")
    obj, errors = validate(doc, Thing)
    assert obj is None
    assert [str(e) for e in errors] == [
        "t.yaml:3:7: size: Input should be a valid integer, unable to parse string as an integer",
        "t.yaml:4:1: colour: unknown key 'colour'",
    ]


@pytest.mark.parametrize(
    "text", ["=", "key: =", "a: !!python/object:os.system x", "a: !custom 1", "a: !!int x", "- !!float nope"]
)
def test_values_without_a_safe_constructor_are_errors_not_crashes(text):
    # found by tests/property/test_rule_loader_fuzz.py: a bare "=" crashed the loader
    doc, errors = parse_yaml(text, "f.yaml")
    assert errors and all(str(e).startswith("f.yaml:1:") for e in errors)


class Inner(StrictModel):
    size: int


class Outer(StrictModel):
    inner: Literal["none"] | Inner
    levels: dict[Literal["own", "team"], int] = Field(default_factory=dict)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an unknown key: at the key, also inside one member of a union (pydantic's loc names the
        # member it tried, "Inner", which is no node of the file)
        ("inner:\n  size: 1\n  colour: red\n", "t.yaml:3:3: inner.Inner.colour: unknown key 'colour'"),
        # a missing field: at the mapping that lacks it
        ("inner:\n  other: 1\n", "t.yaml:2:3: inner.Inner.size: Field required"),
        # a bad value: at the value
        ("inner:\n  size: big\n", "t.yaml:2:9: inner.Inner.size: Input should be a valid integer"),
        # a key a mapping does not accept: at the key
        ("inner: none\nlevels:\n  planet: 1\n", "t.yaml:3:3: levels.planet.[key]: Input should be 'own' or 'team'"),
    ],
)
def test_validate_at_reports_each_kind_of_problem_where_it_is(text, expected):
    doc, _ = parse_yaml(text, "t.yaml")
    errors: list = []
    assert validate_at(doc, (), doc.data, Outer, errors) is None
    assert any(str(e).startswith(expected) for e in errors), [str(e) for e in errors]


def test_strict_model_refuses_unknown_keys_and_changes():
    with pytest.raises(ValidationError):
        Inner.model_validate({"size": 1, "colour": "red"})
    inner = Inner(size=1)
    with pytest.raises(ValidationError):
        inner.size = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "path", sorted(ROOT.glob("rules/**/*.yaml")) + sorted(ROOT.glob("examples/**/*.yaml")), ids=str
)
def test_libyaml_and_the_pure_parser_read_every_shipped_file_alike(path, monkeypatch):
    from gateway import rulefile

    fast, fast_errors = rulefile.parse_yaml(path.read_text(), "f.yaml")
    monkeypatch.setattr(rulefile, "FAST_LOADER", None)
    pure, pure_errors = rulefile.parse_yaml(path.read_text(), "f.yaml")
    assert fast_errors == pure_errors
    assert (fast.data, fast.locations, fast.key_locations) == (pure.data, pure.locations, pure.key_locations)


def test_a_syntax_error_is_reported_in_the_pure_parsers_words_whichever_parser_ran(monkeypatch):
    from gateway import rulefile

    text = "format: 1\nrules:\n  - id: a\n   bad: [\n"
    _, fast = rulefile.parse_yaml(text, "f.yaml")
    monkeypatch.setattr(rulefile, "FAST_LOADER", None)
    _, pure = rulefile.parse_yaml(text, "f.yaml")
    assert fast == pure and "YAML syntax error" in fast[0].message


@pytest.mark.parametrize(
    "text",
    ["format: crmgw.rules/v1\nkey:\tvalue\n", "format: crmgw.rules/v1\nkey: [thu, c?d]\n", "format: x\na\t: b\n"],
    ids=["tab-after-colon", "question-mark-in-flow", "tab-before-colon"],
)
def test_what_the_pure_parser_refuses_is_refused_whichever_parser_is_built(text, monkeypatch):
    from gateway import rulefile

    fast_doc, fast_errors = rulefile.parse_yaml(text, "f.yaml")
    monkeypatch.setattr(rulefile, "FAST_LOADER", None)
    pure_doc, pure_errors = rulefile.parse_yaml(text, "f.yaml")
    assert fast_doc is None and pure_doc is None
    assert fast_errors == pure_errors and "YAML syntax error" in fast_errors[0].message
