"""compile_policies: every problem reported at once, each as file:line:col."""

from __future__ import annotations

import pytest

from gateway.policy import CompiledPolicy

from .factories import compile_texts, error_strings, rule

OK = rule("ok", "allow: {role: {in: [admin]}}")


def test_valid_policy_compiles():
    policy, errors = compile_texts(OK)
    assert errors == [] and isinstance(policy, CompiledPolicy)
    assert [r.id for r in policy.for_operation("customers.view").allows] == ["ok"]
    assert policy.rules["ok"].source == "policies/00.yaml:3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # structure (pydantic, extra=forbid)
        (
            rule("r", "allow: {role: {in: [admin]}}", extra="colour: red"),
            "policies/00.yaml:7:5: rules.0.colour: unknown key 'colour'",
        ),
        (
            "format: crmgw.rules/v1\nrules:\n  - id: r\n    match: {operations: ['*']}\n    deny: true\n",
            "policies/00.yaml:3:5: rules.0.title: Field required",
        ),
        (
            rule("Bad Id", "allow: {role: {in: [admin]}}"),
            "policies/00.yaml:3:9: rules.0.id: String should match pattern",
        ),
        (
            rule("r", "allow: {role: {in: [admin]}}", extra="mode: dry-run"),
            "policies/00.yaml:7:11: rules.0.mode: Input should be 'enforce' or 'shadow'",
        ),
        ("format: crmgw.rules/v2\nrules: []\n", "policies/00.yaml:1:9: format: Input should be 'crmgw.rules/v1'"),
        ("format: crmgw.rules/v1\nrule: []\n", "policies/00.yaml:2:1: rule: unknown key 'rule'"),
        # operations
        (
            rule("r", "allow: {role: {in: [admin]}}", "customers.read"),
            "policies/00.yaml:5:26: unknown operation 'customers.read'",
        ),
        (
            rule("r", "allow: {role: {in: [admin]}}", "customers.view, 'orders.*'"),
            "policies/00.yaml:5:42: operation pattern 'orders.*' matches no operation",
        ),
        # blocks and criteria
        (
            rule("r", "allow: {role: {in: [admin]}}\n    deny: true"),
            "policies/00.yaml:3:5: a rule has exactly one of 'allow' or 'deny'",
        ),
        (rule("r", "description: none"), "policies/00.yaml:3:5: a rule has exactly one of 'allow' or 'deny'"),
        (
            rule("r", "allow: true"),
            "policies/00.yaml:6:12: 'allow: true' is not allowed: an allow rule needs at least one criterion",
        ),
        (rule("r", "allow: {colour: {in: [red]}}"), "policies/00.yaml:6:21: unknown criterion 'colour'"),
        (rule("r", "allow: {role: {in: [wizard]}}"), "policies/00.yaml:6:25: unknown role 'wizard'"),
        (rule("r", "allow: {user: {in: [alice, mallory]}}"), "policies/00.yaml:6:32: unknown user 'mallory'"),
        (rule("r", "allow: {source_ip: {in: $office}}"), "policies/00.yaml:6:29: unknown list '$office'"),
        (rule("r", "allow: {source_ip: {in: [10.0.0.0/33]}}"), "policies/00.yaml:6:30: bad CIDR '10.0.0.0/33'"),
        (
            rule("r", "allow: {time_window: {timezone: Europe/Pariss}}"),
            "policies/00.yaml:6:37: unknown time zone 'Europe/Pariss'",
        ),
        (
            rule("r", "allow: {time_window: {timezone: UTC, from: '8h'}}"),
            'policies/00.yaml:6:48: rules.0.allow.time_window.from: Value error, time must be "HH:MM"',
        ),
        (
            rule("r", "allow:\n      and:\n        - role: {in: [admin]}\n        - not: {mfa: maybe}"),
            "policies/00.yaml:9:22: mfa takes true or false",
        ),
        # data scope and masks
        (
            rule("r", "allow: {role: {in: [admin]}}", "admin.admin", "data_scope: {admin: team}"),
            "policies/00.yaml:7:25: data scope 'team' is not supported by resource 'admin'",
        ),
        (
            rule("r", "allow: {role: {in: [admin]}}", extra="data_scope: {admin: galaxy}"),
            "policies/00.yaml:7:25: unknown data scope 'galaxy'",
        ),
        (
            rule("r", "allow: {role: {in: [admin]}}", extra="data_scope: {wizard: own}"),
            "policies/00.yaml:7:26: unknown role 'wizard'",
        ),
        (
            rule("r", "allow: {role: {in: [admin]}}", extra="mask: [{field: 'phone..x', op: remove}]"),
            "policies/00.yaml:7:20: bad field path 'phone..x'",
        ),
        (
            rule("r", "allow: {role: {in: [admin]}}", extra="mask: [{field: 'phones[]', op: remove}]"),
            "policies/00.yaml:7:20: mask field 'phones[]' must name a field",
        ),
        (
            rule("r", "allow: {role: {in: [admin]}}", extra="mask: [{field: phone, op: remove, keep_last: 4}]"),
            "policies/00.yaml:7:50: keep_last only applies to op: redact",
        ),
        (
            rule("r", "allow: {role: {in: [admin]}}", extra="mask: [{field: phone, op: blur}]"),
            "policies/00.yaml:7:31: rules.0.mask.0.op: Input should be 'remove', 'redact' or 'hash'",
        ),
        (
            rule("r", "deny: {role: {in: [admin]}}", extra="mask: [{field: phone, op: remove}]"),
            "policies/00.yaml:7:11: 'mask' belongs to allow rules",
        ),
        (
            rule("r", "deny: {role: {in: [admin]}}", extra="data_scope: {admin: all}"),
            "policies/00.yaml:7:17: 'data_scope' belongs to allow rules",
        ),
        # lists
        (
            "format: crmgw.rules/v1\nlists:\n  nets: [10.0.0.0/8, 42]\n",
            "policies/00.yaml:3:22: lists.nets.1: Input should be a valid string",
        ),
        ("format: crmgw.rules/v1\nlists:\n  bad-name: [a]\n", "policies/00.yaml:3:13: bad list name 'bad-name'"),
    ],
)
def test_error_with_location(text, expected):
    errors = error_strings(text)
    assert expected in "\n".join(errors), errors


def test_bad_value_in_a_list_is_reported_where_the_list_defines_it():
    text = """\
format: crmgw.rules/v1
lists:
  office: [10.0.0.0/8, 10.0.0.1/8]
rules:
  - id: r
    title: t
    match: {operations: ['*']}
    allow: {source_ip: {in: $office}}
"""
    assert error_strings(text) == ["policies/00.yaml:3:24: bad CIDR '10.0.0.1/8': 10.0.0.1/8 has host bits set"]


def test_lists_are_shared_across_files_and_defined_once():
    lists = "format: crmgw.rules/v1\nlists:\n  office: [10.0.0.0/8]\n"
    user = rule("r", "allow: {source_ip: {in: $office}}")
    assert compile_texts(lists, user)[1] == []
    assert error_strings(lists, lists, user) == [
        "policies/01.yaml:3:11: duplicate list 'office' (first defined at policies/00.yaml:3)"
    ]


def test_duplicate_rule_ids_across_files():
    assert error_strings(OK, OK) == [
        "policies/01.yaml:3:9: duplicate rule id 'ok' (first defined at policies/00.yaml:3)"
    ]


def test_allow_behind_an_unconditional_deny_is_unreachable():
    wall = rule("freeze-customers", "deny: true", "'customers.*'")
    errors = error_strings(wall, rule("sales", "allow: {role: {in: [sales_rep]}}", "customers.view, customers.list"))
    assert errors == ["policies/01.yaml:3:5: unreachable: 'sales' is always denied by rule freeze-customers"]


def test_allow_partly_behind_an_unconditional_deny_is_fine():
    wall = rule("freeze-customers", "deny: true", "'customers.*'")
    policy, errors = compile_texts(
        wall, rule("sales", "allow: {role: {in: [sales_rep]}}", "customers.view, deals.view")
    )
    assert errors == [] and policy is not None


def test_conditional_or_shadow_denies_make_nothing_unreachable():
    conditional = rule("no-kp", "deny: {country: {in: [KP]}}", "'*'")
    shadow = rule("freeze", "deny: true", "'*'", "mode: shadow")
    assert compile_texts(conditional, shadow, OK)[1] == []


def test_disabled_rules_are_still_validated():
    errors = error_strings(rule("r", "allow: {role: {in: [wizard]}}", extra="status: disabled"))
    assert errors == ["policies/00.yaml:6:25: unknown role 'wizard'"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a key of the rule itself
        (
            rule("r", "allow: {role: {in: [admin]}}", extra="colour:\n  - red"),
            "policies/00.yaml:7:5: rules.0.colour: unknown key 'colour'",
        ),
        # a key of a criterion's arguments (checked when the criterion compiles)
        (
            rule("r", "allow:\n      role:\n        in: [admin]\n        within: [x]"),
            "policies/00.yaml:9:9: rules.0.allow.role.within: unknown key 'within'",
        ),
        # a key inside one member of a union (approvers: manager | {roles, manager})
        (
            rule(
                "r",
                "allow: {role: {in: [admin]}}",
                extra="approval:\n  approvers:\n    roles: [admin]\n    colour: red",
            ),
            "policies/00.yaml:10:9: rules.0.approval.approvers.ApproversSpec.colour: unknown key 'colour'",
        ),
    ],
)
def test_an_unknown_key_is_reported_at_the_key_not_its_value(text, expected):
    assert expected in error_strings(text)


def test_all_problems_are_reported_at_once():
    broken = """\
format: crmgw.rules/v1
lists:
  nets: [10.0.0.0/8]
rules:
  - id: one
    title: t
    match: {operations: [customers.read]}
    allow: {role: {in: [wizard]}}
  - id: two
    title: t
    surprise: true
    match: {operations: ['*']}
    deny: true
  - id: three
    title: t
    match: {operations: [deals.view]}
    allow: {time_window: {timezone: Nowhere/Land, from: '25:00'}}
"""
    errors = error_strings(broken, rule("one", "allow: {source_ip: {in: $nope}}"))
    assert [e.split(": ", 1)[0] for e in errors] == [
        "policies/00.yaml:7:26",
        "policies/00.yaml:8:25",
        "policies/00.yaml:11:5",
        "policies/00.yaml:17:57",
        "policies/01.yaml:3:9",
    ]
