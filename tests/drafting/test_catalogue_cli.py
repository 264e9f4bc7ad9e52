"""crmgw catalogue draft: from an OpenAPI document or an audit log, to stdout or a file, never over one."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from gateway.cli import main

DOC = Path(__file__).parent / "data" / "acme_crm_openapi.yaml"


def test_draft_from_openapi_to_stdout_counts_the_todos(capsys):
    assert main(["catalogue", "draft", "--openapi", str(DOC)]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["format"] == "crmgw.rules/v1"
    todos = sum(line.count('"TODO: ') for line in out.splitlines() if not line.startswith("#"))
    assert f"draft written: {todos} TODO(s) to decide" in err and todos > 0


def test_draft_to_a_file_never_overwrites_one_unless_forced(tmp_path, capsys):
    out = tmp_path / "operations.yaml"
    out.write_text("the admin's catalogue\n")
    assert main(["catalogue", "draft", "--openapi", str(DOC), "--out", str(out)]) == 2
    assert out.read_text() == "the admin's catalogue\n"
    assert "exists" in capsys.readouterr().err
    assert main(["catalogue", "draft", "--openapi", str(DOC), "--out", str(out), "--force"]) == 0
    assert yaml.safe_load(out.read_text())["endpoints"]


def test_draft_from_an_audit_log(tmp_path, capsys):
    log = tmp_path / "audit.log"
    log.write_text(
        json.dumps({"method": "GET", "path": "/api/v2/leads/42/notes/", "reason": "operation-unknown"}) + "\n"
    )
    assert main(["catalogue", "draft", "--audit-log", str(log)]) == 0
    endpoints = yaml.safe_load(capsys.readouterr().out)["endpoints"]
    assert [(e["method"], e["path"]) for e in endpoints] == [("GET", "/api/v2/leads/{lead_id:int}/notes/")]


def test_unreadable_input_is_a_usage_error(tmp_path, capsys):
    swagger = tmp_path / "swagger.json"
    swagger.write_text(json.dumps({"swagger": "2.0", "paths": {}}))
    assert main(["catalogue", "draft", "--openapi", str(swagger)]) == 2
    assert "convert it to 3.x" in capsys.readouterr().err
    assert main(["catalogue", "draft", "--audit-log", str(tmp_path / "missing.log")]) == 2
    assert "cannot read" in capsys.readouterr().err
