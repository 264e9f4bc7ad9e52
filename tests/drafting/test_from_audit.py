"""Grouping the audit log's operation-unknown requests into catalogue templates, with counts."""

from __future__ import annotations

import json

import pytest
import yaml

from gateway.context.todos import find_todos, is_todo
from gateway.drafting.from_audit import draft_from_audit, group_unknown, template_of
from gateway.rulefile import parse_yaml

U1, U2 = "5d1e2c1a-0c55-4b8e-9e52-6a0e0c0f0a01", "0b7f3b51-5f0a-4f55-9d55-4b1d8e1a1c01"


@pytest.mark.parametrize(
    ("path", "template"),
    [
        (f"/api/v2/leads/{U1}/", "/api/v2/leads/{id:uuid}/"),
        (f"/api/v2/leads/{U1}/notes/17", "/api/v2/leads/{lead_id:uuid}/notes/{id:int}"),
        ("/api/orders/5f8d0d55b54764421b7156c9/lines/2", "/api/orders/{order_id}/lines/{id:int}"),
        ("/api/v2/leads/kanban/", "/api/v2/leads/kanban/"),
        ("/api/files/report%20q3.pdf", "/api/files/{id}"),  # cannot be a literal: a parameter
        ("/api/v2/leads/?page=2", "/api/v2/leads/"),
        ("/api/1/2", "/api/{api_id:int}/{id:int}"),
        ("/", "/"),
        ("no-slash", None),
        ("/a//b", None),
    ],
)
def test_paths_become_templates(path, template):
    assert template_of(path) == template


def line(
    method: str,
    path: str,
    reason: str = "operation-unknown",
    user: str = "alice",
    time: str = "2026-03-03T10:00:00+00:00",
) -> str:
    return json.dumps({"time": time, "method": method, "path": path, "reason": reason, "user": user})


LOG = [
    line("GET", f"/api/v2/leads/{U1}/notes/", user="alice", time="2026-03-03T10:00:00+00:00"),
    line("GET", f"/api/v2/leads/{U2}/notes/", user="bob", time="2026-03-03T11:00:00+00:00"),
    line("HEAD", f"/api/v2/leads/{U2}/notes/", user="bob", time="2026-03-02T09:00:00+00:00"),
    line("DELETE", f"/api/v2/accounts/{U1}/"),
    line("GET", "/api/v2/leads/", reason="default-deny"),  # refused by the rules, not unknown
    line("TRACE", "/api/v2/leads/"),
    "not json at all",
    "[1, 2]",
    "",
]


def test_unknown_requests_are_grouped_and_counted_most_frequent_first():
    groups, tally = group_unknown(LOG)
    assert [(g.method, g.template, g.count) for g in groups] == [
        ("GET", "/api/v2/leads/{lead_id:uuid}/notes/", 3),
        ("DELETE", "/api/v2/accounts/{id:uuid}/", 1),
    ]
    notes = groups[0]
    assert notes.users == {"alice", "bob"} and (notes.first, notes.last) == (
        "2026-03-02T09:00:00+00:00",
        "2026-03-03T11:00:00+00:00",
    )
    assert (tally.lines, tally.unreadable, tally.unknown, tally.skipped) == (8, 2, 5, 1)


def test_the_draft_has_a_todo_operation_per_template_and_guesses_in_its_reason(tmp_path):
    log = tmp_path / "audit.log"
    log.write_text("\n".join(LOG) + "\n")
    text = draft_from_audit(log)
    doc, errors = parse_yaml(text, "draft.yaml")
    assert doc is not None and errors == []
    endpoints = doc.data["endpoints"]
    assert all(is_todo(e["operation"]) and is_todo(e["records"]) for e in endpoints)
    assert "seen 3 time(s) as operation-unknown; from the path: notes.list?" in endpoints[0]["operation"]
    assert "accounts.delete?" in endpoints[1]["operation"] and is_todo(endpoints[1]["lookup"])
    assert len(find_todos(doc)) == 5
    assert "# 3 request(s), 2 user(s): alice, bob; 2026-03-02T09:00:00+00:00 .. 2026-03-03T11:00:00+00:00" in text
    assert "2 line(s) not JSON" in text and "1 request(s) with no catalogue method or usable path" in text


def test_rare_templates_can_be_left_out(tmp_path):
    log = tmp_path / "audit.log"
    log.write_text("\n".join(LOG))
    endpoints = yaml.safe_load(draft_from_audit(log, min_count=2))["endpoints"]
    assert [e["path"] for e in endpoints] == ["/api/v2/leads/{lead_id:uuid}/notes/"]


def test_an_empty_log_drafts_an_empty_catalogue(tmp_path):
    log = tmp_path / "audit.log"
    log.write_text("")
    assert yaml.safe_load(draft_from_audit(log))["endpoints"] == []
