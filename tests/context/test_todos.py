"""TODOs left in a rule file: the spelling (a value "TODO: <reason>") and find_todos' file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.context.catalogue import load_catalogue
from gateway.context.todos import find_todos, is_todo, reason_of, todo
from gateway.rulefile import parse_yaml
from tests.conftest import REPO

DRAFT = textwrap.dedent("""\
    format: crmgw.rules/v1
    resources:
      leads:
        scope: "TODO: who owns a lead?"
        fields: [id, TODO]
    endpoints:
      - method: GET
        path: /api/leads/
        operation: leads.list
        records: ["TODO: no schema for 200"]
        note: "nothing to do here: a TODO: inside a sentence is prose"
        lower: "todo: not the spelling"
        "TODO: a key left open": 1
      - {method: GET, path: "/api/leads/{id}/", operation: "  TODO:   view or export?  ", records: [lead]}
""")


def messages(text: str) -> list[str]:
    doc, errors = parse_yaml(text, "rules/operations.yaml")
    assert doc is not None and errors == []
    return [str(e) for e in find_todos(doc)]


def test_every_todo_is_reported_with_its_place_and_reason():
    assert messages(DRAFT) == [
        "rules/operations.yaml:4:12: TODO left: who owns a lead?",
        "rules/operations.yaml:5:18: TODO left: (no reason given)",
        "rules/operations.yaml:10:15: TODO left: no schema for 200",
        "rules/operations.yaml:13:5: TODO left: a key left open",
        "rules/operations.yaml:14:56: TODO left: view or export?",
    ]


def test_a_file_without_todos_has_none():
    assert messages((REPO / "rules" / "operations.yaml").read_text()) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("TODO: x", True),
        ("TODO", True),
        ("  TODO:x", True),
        ("TODO:", True),
        ("TODOS: x", False),
        ("todo: x", False),
        ("see TODO: x", False),
        (None, False),
        (3, False),
        (["TODO"], False),
    ],
)
def test_the_spelling(value, expected):
    assert is_todo(value) is expected


def test_todo_writes_the_spelling_find_todos_reads():
    value = todo("no response\n   schema  for 200")
    assert value == "TODO: no response schema for 200"
    assert is_todo(value) and reason_of(value) == "no response schema for 200"


# -- the catalogue loader refuses TODOs (crmgw rules check with them) --------------------------------
# A writable key and a CSV column are free text to the schema: only the TODO check catches them.
SILENT = textwrap.dedent("""\
    format: crmgw.rules/v1
    resources:
      leads: {scope: {own: {field: owner, identity: user}}}
    endpoints:
      - method: POST
        path: /api/leads/
        operation: leads.create
        records: ["$"]
        body: {writable: [title, "TODO: which other keys may a rep write?"]}
      - method: GET
        path: /api/leads/export/
        operation: leads.export
        format: csv
        records: ["$"]
        columns: {Owner: owner, Phone: "TODO: which field is Phone?"}
""")


def test_the_catalogue_loader_refuses_a_todo_with_its_place(tmp_path):
    f = tmp_path / "operations.yaml"
    f.write_text(SILENT)
    catalogue, errors = load_catalogue(f, "rules/operations.yaml")
    assert catalogue is None
    assert {str(e) for e in errors} >= {
        "rules/operations.yaml:9:30: TODO left: which other keys may a rep write?",
        "rules/operations.yaml:15:36: TODO left: which field is Phone?",
    }


def test_rules_check_refuses_a_catalogue_with_todos(rules_copy: Path, capsys):
    ops = rules_copy / "operations.yaml"
    ops.write_text(ops.read_text().replace('records: ["data[]"]', 'records: ["TODO: where are they?"]', 1))
    assert main(["rules", "check", str(rules_copy)]) == 1
    assert any(line.endswith("TODO left: where are they?") for line in capsys.readouterr().out.splitlines())
