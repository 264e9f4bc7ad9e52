"""rules/anomalies.yaml: the shipped file loads; every mistake is reported at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.ruleset import load_ruleset
from gateway.signals import load_anomalies
from tests.conftest import RULES
from tests.signals.factories import load, write_rules

GOOD = """\
- id: bulk-export
  title: Bulk export
  count: records_exported
  match: {operations: ["*.export"]}
  timespan: 1h
  condition: {gt: 500, and_gt_user_max_days: 3}
  level: high
  summary: "{user} exported {value}"
"""


def test_shipped_rules_load_against_the_shipped_catalogue_and_directory():
    ruleset, errors = load_ruleset(RULES)
    assert ruleset is not None, errors
    rules, errors = load_anomalies(
        RULES / "anomalies.yaml",
        "rules/anomalies.yaml",
        operations=set(ruleset.catalogue.operations),
        roles=set(ruleset.directory.roles),
        users=set(ruleset.directory.users),
    )
    assert errors == []
    by_id = {r.id: r for r in rules.rules}
    assert {i: (r.level, r.action) for i, r in by_id.items()} == {
        "bulk-export": ("high", "alert"),
        "mass-delete": ("critical", "block"),
        "enumeration-distinct": ("high", "alert"),
        "enumeration-sequential": ("high", "alert"),
        "off-hours-access": ("medium", "alert"),
        "new-country": ("medium", "alert"),
        "new-country-off-hours": ("high", "step_up"),
    }
    assert by_id["bulk-export"].operations == {"customers.export"}
    assert by_id["mass-delete"].action_ttl == 3600
    assert by_id["bulk-export"].source == "rules/anomalies.yaml:14"


def test_a_good_rule_compiles(tmp_path):
    rules, errors = load(write_rules(tmp_path, GOOD))
    assert errors == []
    (rule,) = rules.rules
    assert (rule.count, rule.timespan, rule.gt, rule.factor, rule.by_resource) == (
        "records_exported",
        "1h",
        500,
        3,
        False,
    )


@pytest.mark.parametrize(
    "change, line, col, message",
    [
        (("count: records_exported", "count: rows"), 5, 12, "rules.0.count: Input should be"),
        (('["*.export"]', '["*.exprot"]'), 6, 26, "matches no operation"),
        (('["*.export"]', '["customers.exprot"]'), 6, 26, "unknown operation 'customers.exprot'"),
        (("timespan: 1h", "timespan: 2h"), 7, 15, "rules.0.timespan"),
        (("{gt: 500, and_gt_user_max_days: 3}", "{gt: 500, gte: 3}"), 8, 16, "exactly one of 'gt' or 'gte'"),
        (
            ("{gt: 500, and_gt_user_max_days: 3}", "{gt: yes}"),
            8,
            21,
            "rules.0.condition.gt: Input should be a valid number",
        ),
        (("level: high", "level: severe"), 9, 12, "rules.0.level"),
        (('"{user} exported {value}"', '"{user} took {rows}"'), 10, 14, "unknown placeholder {rows}"),
        (("level: high", "level: high\n  colour: red"), 10, 5, "rules.0.colour: unknown key 'colour'"),
        (("level: high", "level: high\n  action: block"), 10, 13, "action 'block' needs action_ttl"),
        (("level: high", "level: high\n  action: step_up\n  action_ttl: 1y"), 11, 17, "action_ttl '1y' must be like"),
        (("level: high", "level: high\n  action_ttl: 1h"), 10, 17, "action_ttl only applies to block and step_up"),
        (("level: high", "level: high\n  group_by: [resource]"), 10, 15, "group_by must be [user] or [user, resource]"),
        (("level: high", "level: high\n  exceptions: [{user: {in: [mallory]}}]"), 10, 31, "unknown user 'mallory'"),
        (("level: high", "level: high\n  exceptions: [{role: {in: [ceo]}}]"), 10, 31, "unknown role 'ceo'"),
        (("level: high", "level: high\n  exceptions: [{country: {in: [France]}}]"), 10, 34, "ISO 3166-1 alpha-2"),
        # a code followed by a newline is no code (a regex's $ also matches before a final newline)
        (("level: high", 'level: high\n  exceptions: [{country: {not_in: ["FR\\n"]}}]'), 10, 38, "ISO 3166-1 alpha-2"),
        (("level: high", "level: high\n  exceptions: [{}]"), 10, 18, "needs at least one of"),
    ],
)
def test_mistakes_are_reported_at_file_line_col(tmp_path, change, line, col, message):
    path = write_rules(tmp_path, GOOD.replace(*change))
    rules, errors = load(path)
    assert rules is None
    assert [(e.file, e.line, e.col) for e in errors] == [("anomalies.yaml", line, col)], [str(e) for e in errors]
    assert message in errors[0].message


@pytest.mark.parametrize(
    "change, line, col, message",
    [
        (("level: high", "level: high\n  colour:\n    - red"), 10, 5, "rules.0.colour: unknown key 'colour'"),
        # an exception key that is no criterion of exceptions
        (
            ("level: high", "level: high\n  exceptions:\n    - team:\n        in: [east]"),
            11,
            9,
            "rules.0.exceptions.0.team: unknown key 'team'",
        ),
        # a key of an exception's criterion (compiled by the policy criterion)
        (
            ("level: high", "level: high\n  exceptions:\n    - user:\n        in: [alice]\n        within: [x]"),
            13,
            11,
            "rules.0.exceptions.0.user.within: unknown key 'within'",
        ),
    ],
)
def test_an_unknown_key_is_reported_at_the_key_not_its_value(tmp_path, change, line, col, message):
    rules, errors = load(write_rules(tmp_path, GOOD.replace(*change)))
    assert rules is None
    assert [(e.line, e.col, e.message) for e in errors] == [(line, col, message)], [str(e) for e in errors]


def test_relative_condition_on_distinct_records_is_refused(tmp_path):
    body = GOOD.replace("records_exported", "distinct_records")
    rules, errors = load(write_rules(tmp_path, body))
    assert rules is None and "distinct_records has no daily history" in errors[0].message


def test_every_problem_is_reported_at_once(tmp_path):
    bad = GOOD.replace("level: high", "level: severe") + GOOD.replace("count: records_exported", "count: rows")
    rules, errors = load(write_rules(tmp_path, bad))
    assert rules is None
    assert [e.line for e in errors] == [9, 13]


def test_duplicate_rule_ids_name_the_first_definition(tmp_path):
    rules, errors = load(write_rules(tmp_path, GOOD + GOOD))
    assert rules is None
    assert [str(e) for e in errors] == [
        "anomalies.yaml:11:9: duplicate rule id 'bulk-export' (first defined at line 3)"
    ]


def test_unknown_format_is_refused(tmp_path):
    path = tmp_path / "anomalies.yaml"
    path.write_text("format: crmgw.rules/v9\nrules: []\n")
    rules, errors = load(path)
    assert rules is None and "unknown or missing format" in errors[0].message


def test_disabled_rules_are_checked_but_not_loaded(tmp_path):
    rules, errors = load(write_rules(tmp_path, GOOD.replace("level: high", "level: high\n  status: disabled")))
    assert errors == [] and rules.rules == ()
    rules, errors = load(write_rules(tmp_path, GOOD.replace("level: high", "level: severe\n  status: disabled")))
    assert rules is None


def test_missing_file_is_an_error_not_an_exception(tmp_path):
    rules, errors = load_anomalies(
        Path(tmp_path / "nope.yaml"), "nope.yaml", operations=set(), roles=set(), users=set()
    )
    assert rules is None and errors[0].file == "nope.yaml"
