"""Issue 13.4, rule replay: a demo session recorded by the real gateway in front of democrm, replayed
with ``crmgw rules replay`` against a draft that closes the office an hour earlier (17:00 instead of
18:00 Paris). Exactly the sales reps' customer reads between 17:00 and 18:00 change; an identical
copy of the rules changes nothing and exits 0."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from gateway.cli import main
from tests.conftest import PARIS, REPO, RULES
from tests.integration.conftest import auth

# Tuesday 3 March 2026 (Paris, +01:00). (hour, minute, user, target)
SESSION = [
    (10, 0, "alice", "/api/customers"),
    (10, 5, "dave", "/api/customers"),
    (16, 30, "alice", "/api/customers?page_size=10"),
    (16, 59, "bob", "/api/customers"),
    (17, 10, "alice", "/api/customers"),  # changes
    (17, 20, "alice", "/api/deals"),  # deals: no office-hours rule
    (17, 30, "bob", "/api/customers/1"),  # changes (customers.view)
    (17, 40, "dave", "/api/customers"),  # a manager: no office-hours rule
    (17, 45, "frank", "/api/customers?page_size=100"),  # support: no change (its shadow rule fires)
    (17, 59, "alice", "/api/customers?page_size=5"),  # changes
    (18, 0, "alice", "/api/customers"),  # already outside office hours
    (18, 20, "bob", "/api/customers"),
    (19, 0, "dave", "/api/customers"),
]
CHANGING = {(17, 10), (17, 30), (17, 59)}


@pytest.fixture
def draft(tmp_path) -> Path:
    """The shipped rules with office hours ending at 17:00."""
    dest = tmp_path / "draft"
    shutil.copytree(RULES, dest)
    policy = dest / "policies" / "10-sales.yaml"
    text = policy.read_text()
    assert text.count('to: "18:00"') == 1
    policy.write_text(text.replace('to: "18:00"', 'to: "17:00"'))
    return dest


@pytest.fixture
def same(tmp_path) -> Path:
    dest = tmp_path / "same"
    shutil.copytree(RULES, dest)
    return dest


@pytest.fixture
async def recorded(make_gateway, crm, clock, tmp_path) -> tuple[Path, dict]:
    """The audit log of SESSION (plus one unauthenticated request) and its decision ids by time."""
    gw = await make_gateway(crm)
    for hour, minute, user, target in SESSION:
        clock.set(datetime(2026, 3, 3, hour, minute, tzinfo=PARIS))
        resp = await gw.get(target, headers=auth(user, ip="10.1.2.3"))
        assert resp.status in (200, 403, 404), (user, target, resp.status)
    assert (await gw.get("/api/customers")).status == 401  # no user: not replayable
    log = tmp_path / "audit.log"
    ids = {}
    for line in log.read_bytes().splitlines():
        record = orjson.loads(line)
        if record.get("user"):
            when = datetime.fromisoformat(record["time"]).astimezone(PARIS)
            ids[(when.hour, when.minute)] = record["decision_id"]
    assert len(ids) == len(SESSION)
    return log, ids


def replay(capsys, *args) -> tuple[int, str]:
    code = main(["rules", "replay", "--current", str(RULES), *args])
    return code, capsys.readouterr().out


async def test_a_tighter_office_hours_draft_lists_exactly_the_requests_between_17_and_18(recorded, draft, capsys):
    log, ids = recorded
    code, out = replay(capsys, "--audit-log", str(log), "--rules", str(draft), "--json", "--examples", "10")
    assert code == 1
    report = json.loads(out)
    changed = {ex["decision_id"] for g in report["groups"] for ex in g["examples"]}
    assert changed == {ids[t] for t in CHANGING}
    assert report["changed"] == 3 and report["changes"] == {"allow -> deny": 3}
    assert report["replayed"] == len(SESSION)
    assert report["skipped"]["no identified user (refused before the rules)"] == 1
    assert report["by_rule"] == {"sales-rep-customers-office-hours": 3}
    assert report["by_user"] == {"alice": 2, "bob": 1}
    assert report["by_operation"] == {"customers.list": 2, "customers.view": 1}
    groups = {(g["change"], g["rule"], g["user"], g["operation"]): g["count"] for g in report["groups"]}
    assert groups == {
        ("allow -> deny", "sales-rep-customers-office-hours", "alice", "customers.list"): 2,
        ("allow -> deny", "sales-rep-customers-office-hours", "bob", "customers.view"): 1,
    }
    example = next(g for g in report["groups"] if g["user"] == "bob")["examples"][0]
    assert example["current"]["effect"] == "allow" and example["current"]["scope"] == "own"
    assert example["draft"]["effect"] == "deny"
    assert example["draft"]["rules"] == ["sales-rep-customers-office-hours"]
    assert example["changed"] == ["effect", "scope", "rule"]
    # The same traffic seen by the current shadow rule: frank's page of 100 would have been denied.
    shadow = {s["rule"]: s for s in report["shadow"]}
    assert shadow["support-bulk-read-review"]["would_flip"] == 1
    assert shadow["support-bulk-read-review"]["examples"][0]["decision_id"] == ids[(17, 45)]
    assert "body" in report["not_replayed"]


async def test_the_text_report_groups_by_rule_user_and_operation(recorded, draft, capsys):
    log, ids = recorded
    code, out = replay(capsys, "--audit-log", str(log), "--rules", str(draft))
    assert code == 1
    assert "3 request(s) change: allow -> deny 3" in out
    assert "by rule: sales-rep-customers-office-hours 3" in out
    assert "by user: alice 2, bob 1" in out
    assert "[2] allow -> deny  rule sales-rep-customers-office-hours  user alice  operation customers.list" in out
    assert "GET /api/customers/1 (" + ids[(17, 30)] + ")" in out
    assert "not replayed: a write's body" in out
    for (hour, minute), decision_id in ids.items():
        assert (decision_id in out) == ((hour, minute) in CHANGING)


async def test_an_identical_copy_changes_nothing_and_exits_0(recorded, same, capsys):
    log, _ = recorded
    code, out = replay(capsys, "--audit-log", str(log), "--rules", str(same))
    assert code == 0, out
    assert "no request changes" in out
    code, out = replay(capsys, "--audit-log", str(log), "--rules", str(same), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["changed"] == 0 and report["groups"] == [] and report["replayed"] == len(SESSION)
    assert report["recorded_differs"]["other_revision"] == 0


async def test_lines_recorded_under_other_rules_are_flagged_not_counted(recorded, draft, capsys, tmp_path):
    """The draft used as "current": the recordings (made with 18:00) now differ from the current
    re-decision for the three 17:xx requests; the diff draft -> draft is empty."""
    log, _ = recorded
    code = main(["rules", "replay", "--current", str(draft), "--rules", str(draft), "--audit-log", str(log), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["changed"] == 0
    assert report["recorded_differs"]["other_revision"] == 3


@pytest.mark.slow
def test_the_command_runs_as_a_process_and_refuses_a_draft_that_does_not_load(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(RULES, broken)
    (broken / "operations.yaml").write_text("format: crmgw.rules/v1\nbogus: [\n")
    log = tmp_path / "audit.log"
    log.write_text("")
    run = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "rules", "replay", "--audit-log", str(log), "--rules", str(broken)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert run.returncode == 2
    assert "operations.yaml:" in run.stderr and "do not load" in run.stderr
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "rules",
            "replay",
            "--audit-log",
            str(tmp_path / "missing.log"),
            "--rules",
            str(RULES),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert run.returncode == 2 and "no audit log" in run.stderr
