"""Acceptance 11: rules check, rules test and explain on the shipped rules, with CI-usable exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gateway.cli import build_parser, main
from gateway.explain import DEFAULT_IP, DEFAULT_METHOD
from tests.conftest import RULES


def test_rules_check_passes_on_shipped_rules(capsys):
    assert main(["rules", "check", str(RULES)]) == 0
    assert "ok:" in capsys.readouterr().out


def test_rules_check_reports_every_problem_with_file_line(rules_copy, capsys):
    ops = rules_copy / "operations.yaml"
    ops.write_text(ops.read_text().replace("operation: customers.view", "operation: customers.peek", 1))
    users = rules_copy / "users.yaml"
    users.write_text(users.read_text() + "extra_top_level: 1\n")
    assert main(["rules", "check", str(rules_copy)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("rules/users.yaml:") and "extra_top_level" in line for line in out)
    assert any(line.startswith("rules/operations.yaml:") for line in out)
    for line in out:
        file, lineno, col, _ = line.split(":", 3)
        assert int(lineno) >= 1 and int(col) >= 1


def test_rules_test_runs_shipped_policy_tests(capsys):
    assert main(["rules", "test", str(RULES)]) == 0
    out = capsys.readouterr().out
    passed = int(out.strip().splitlines()[-1].split()[0])
    assert passed >= 10


def test_rules_test_fails_when_no_test_ran(rules_copy, capsys):
    for f in (rules_copy / "tests").glob("*.yaml"):
        f.unlink()
    assert main(["rules", "test", str(rules_copy)]) == 1


def test_rules_test_fails_on_a_wrong_expectation(rules_copy, capsys):
    f = sorted((rules_copy / "tests").glob("*.yaml"))[0]
    text = f.read_text()
    assert "effect: allow" in text
    f.write_text(text.replace("effect: allow", "effect: deny", 1))
    assert main(["rules", "test", str(rules_copy)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_explain_prints_every_criterion_and_exit_code(capsys):
    argv = [
        "explain",
        "--rules",
        str(RULES),
        "--user",
        "alice",
        "--path",
        "/api/customers/1",
        "--at",
        "2026-03-02T18:30:00+01:00",
        "--exit-code",
    ]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert out.startswith("DENY") and "time-window-outside" in out
    assert main(argv + ["--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["effect"] == "deny" and data["trace"]


def test_explain_allow_exit_zero(capsys):
    argv = [
        "explain",
        "--rules",
        str(RULES),
        "--user",
        "alice",
        "--path",
        "/api/customers/1",
        "--at",
        "2026-03-02T17:59:00+01:00",
        "--exit-code",
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["effect"] == "allow" and data["scope"] == "own"


def test_explain_prints_the_condition_tree_with_each_not(capsys):
    argv = [
        "explain",
        "--rules",
        str(RULES),
        "--user",
        "alice",
        "--path",
        "/api/customers?page_size=500",
        "--at",
        "2026-03-02T18:30:00+01:00",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    hours = out.split("sales-rep-customers-office-hours (enforce)\n", 1)[1].splitlines()[:4]
    assert [line.strip() for line in hours] == [
        "and: true",
        "role: true (role-unauthorized)",
        "not role: true (role is false: role-unauthorized)",
        "not time_window: true (time_window is false: time-window-outside)",
    ]
    listing = out.split("baseline-deny-mass-listing (enforce)\n", 1)[1].splitlines()[:6]
    assert listing == [  # a not around an or: each level indented, each node with its value
        "            and: true",
        "              not role: true (role is false: role-unauthorized)",
        "              not: true",
        "                or: false",
        "                  query: false (query-out-of-bounds)",
        "                  query: false (query-out-of-bounds)",
    ]
    assert "not source_ip: false (source_ip is true: source-ip-ok)" in out


def test_explain_json_carries_each_rules_condition_tree(capsys):
    argv = [
        "explain",
        "--rules",
        str(RULES),
        "--user",
        "alice",
        "--ip",
        "203.0.113.5",
        "--country",
        "FR",
        "--path",
        "/api/customers/1",
        "--at",
        "2026-03-03T10:00:00+01:00",
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["reason"], data["rules"]) == ("source-ip-unauthorized", ["baseline-deny-unlisted-networks"])
    trace = {t["rule"]: t for t in data["trace"]}
    assert trace["baseline-deny-unlisted-networks"]["condition"] == {
        "op": "not",
        "result": True,
        "children": [{"criterion": "source_ip", "result": False, "reason": "source-ip-unauthorized"}],
    }


def test_explain_names_no_rule_for_a_reps_delete(capsys):
    argv = [
        "explain",
        "--rules",
        str(RULES),
        "--user",
        "alice",
        "--method",
        "DELETE",
        "--path",
        "/api/customers/7",
        "--at",
        "2026-03-03T10:00:00+01:00",
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["reason"], data["rules"], data["reasons"]) == ("default-deny", [], ["default-deny"])


def test_explain_defaults_are_the_shared_ones(capsys):
    args = build_parser().parse_args(["explain", "--user", "alice", "--path", "/api/customers/1"])
    assert (args.method, args.ip, args.at) == (DEFAULT_METHOD, DEFAULT_IP, None)
    argv = [
        "explain",
        "--rules",
        str(RULES),
        "--user",
        "alice",
        "--path",
        "/api/customers/1",
        "--at",
        "2026-03-03T10:00:00+01:00",
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["effect"], data["client_ip"]) == ("allow", DEFAULT_IP)
    assert main(argv + ["--ip", ""]) == 0  # an empty address is an unknown one, which the baseline refuses
    data = json.loads(capsys.readouterr().out)
    assert (data["effect"], data["client_ip"]) == ("deny", None) and "source-ip-unknown" in data["reasons"]


@pytest.mark.slow
def test_console_script_is_installed_and_exits_nonzero_on_bad_settings(tmp_path):
    bad = tmp_path / "gateway.yaml"
    bad.write_text("upstream: {url: ftp://x}\nlisten: {port: 99999}\nnope: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"{bad}:3:1: " in proc.stderr and "nope" in proc.stderr
    assert "upstream.url" in proc.stderr and "listen.port" in proc.stderr
