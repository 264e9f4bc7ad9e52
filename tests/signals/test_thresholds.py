"""Threshold truth tables: when a rule fires, which group it reads, what exceptions do."""

from __future__ import annotations

import pytest

from detectors.events import count_event
from gateway.signals.counters import CountResult, GroupResult, match_group
from gateway.signals.thresholds import PlanCache, evaluate, group_of, plan
from tests.signals.factories import NIGHT, export, record, rules_from, view

RULE = """\
- id: r
  title: Test rule
  count: records_exported
  timespan: 1h
  condition: {CONDITION}
  level: high
  summary: "{user}: {value} > {threshold} (baseline {baseline}) in {timespan}"
  EXTRA
"""


def make_rule(tmp_path, condition: str, extra: str = ""):
    (rule,) = rules_from(tmp_path, RULE.replace("{CONDITION}", condition).replace("EXTRA", extra)).rules
    return rule


def result(after: int, added: int, baseline: int = 0, prefix: str = "g:") -> CountResult:
    return CountResult(
        flags={},
        increments={"records_exported": added},
        groups={prefix: GroupResult({"1h": {"records_exported": after}}, {}, {"records_exported": baseline})},
    )


@pytest.mark.parametrize(
    "condition, before, after, baseline, fires",
    [
        ("{gt: 500}", 400, 500, 0, False),  # equal is not greater
        ("{gt: 500}", 400, 501, 0, True),  # crossed on this request
        ("{gt: 500}", 501, 900, 0, False),  # already above before: no second finding
        ("{gte: 500}", 400, 500, 0, True),
        ("{gte: 500}", 500, 600, 0, False),
        ("{gt: 500, and_gt_user_max_days: 3}", 0, 600, 100, True),  # 600 > 500 and > 300
        ("{gt: 500, and_gt_user_max_days: 3}", 0, 600, 250, False),  # 600 <= 750: usual for this user
        ("{gt: 500, and_gt_user_max_days: 3}", 700, 800, 250, True),  # crossed 750 now
        ("{gt: 500, and_gt_user_max_days: 3}", 0, 600, 0, True),  # no history: the absolute decides
        ("{gt: 0}", 0, 1, 0, True),
        ("{gt: 0}", 1, 2, 0, False),
    ],
)
def test_a_rule_fires_on_the_request_that_makes_it_true(tmp_path, condition, before, after, baseline, fires):
    rule = make_rule(tmp_path, condition)
    rec = export(n=after - before)
    finding = evaluate(rule, "g:", result(after, after - before, baseline), count_event(rec), rec)
    assert (finding is not None) == fires


def test_a_finding_explains_itself(tmp_path):
    rule = make_rule(tmp_path, "{gt: 500, and_gt_user_max_days: 3}")
    rec = export(n=300)
    finding = evaluate(rule, "g:", result(900, 300, baseline=200), count_event(rec), rec)
    assert finding.summary == "alice: 900 > 600 (baseline 200) in 1h"
    assert (finding.value, finding.threshold, finding.baseline, finding.score) == (900, 600, 200, 1.5)
    assert finding.evidence["before"] == 600 and finding.evidence["counters"] == {"records_exported": 900}
    assert finding.evidence["request"]["request_id"] == rec["request_id"]
    assert finding.silenced_by is None


@pytest.mark.parametrize(
    "exception, rec, silenced",
    [
        ("{user: {in: [svc-reporting]}}", export("svc-reporting"), 0),
        ("{user: {in: [svc-reporting]}}", export("alice"), None),
        ("{user: {not_in: [alice]}}", export("bob"), 0),
        ("{user: {not_in: [alice]}}", export("alice"), None),
        ("{role: {in: [reporting_service]}}", export("svc-reporting", roles=["reporting_service"]), 0),
        ("{country: {in: [FR]}}", export("alice", country="FR"), 0),
        ("{country: {in: [FR]}}", export("alice", country=None), None),  # unknown country never silences
        ("{country: {not_in: [FR]}}", export("alice", country=None), None),
        ("{user: {in: [alice]}, country: {in: [DE]}}", export("alice", country="FR"), None),  # all keys must hold
        ("{operation: {in: ['customers.*']}}", export("alice"), 0),
    ],
)
def test_exceptions_silence_matching_findings(tmp_path, exception, rec, silenced):
    rule = make_rule(tmp_path, "{gt: 10}", f"exceptions: [{exception}]")
    finding = evaluate(rule, "g:", result(300, 300), count_event(rec), rec)
    assert finding is not None and finding.silenced_by == silenced


def _without_roles(rec):
    rec["roles"] = []
    return rec


@pytest.mark.parametrize(
    "exception, rec, silenced",
    [
        ("{resource: {in: [customers]}}", export("alice"), 0),
        ("{resource: {not_in: [customers]}}", export("alice"), None),
        ("{role: {not_in: [admin]}}", export("alice"), 0),
        ("{role: {not_in: [admin]}}", _without_roles(export("alice")), None),  # no roles: unknown, never silences
        ("{operation: {not_in: ['customers.*']}}", export("alice"), None),
    ],
)
def test_exceptions_are_policy_criteria_over_the_findings_facts(tmp_path, exception, rec, silenced):
    rule = make_rule(tmp_path, "{gt: 10}", f"exceptions: [{exception}]")
    finding = evaluate(rule, "g:", result(300, 300), count_event(rec), rec)
    assert finding is not None and finding.silenced_by == silenced


MATCH_RULES = """\
- id: all-user
  title: t
  count: requests
  timespan: 5m
  condition: {gt: 1}
  level: low
  summary: s
- id: per-resource
  title: t
  count: distinct_records
  group_by: [user, resource]
  match: {operations: ["*.view"]}
  timespan: 5m
  condition: {gt: 1}
  level: low
  summary: s
- id: night
  title: t
  count: new_country
  match: {off_hours: true}
  timespan: 1d
  condition: {gt: 0, and_gt_user_max_days: 2}
  level: low
  summary: s
"""


def test_groups_follow_group_by_and_match(tmp_path):
    rules = {r.id: r for r in rules_from(tmp_path, MATCH_RULES).rules}
    day_view, night_list = count_event(view(rid=3)), count_event(record(operation="customers.list", when=NIGHT))
    views = match_group(frozenset({"customers.view", "contacts.view", "deals.view"}), None)
    assert group_of(rules["all-user"], day_view, "customers.view") == "g:"
    assert group_of(rules["per-resource"], day_view, "customers.view") == views + "r:customers:"
    assert group_of(rules["per-resource"], night_list, "customers.list") is None
    assert group_of(rules["night"], day_view, "customers.view") is None
    assert group_of(rules["night"], night_list, "customers.list") == match_group(None, True)


def test_plan_asks_only_for_what_the_rules_read(tmp_path):
    rules = rules_from(tmp_path, MATCH_RULES)
    rec = view(rid=3, when=NIGHT)
    groups, pairs = plan(rules, count_event(rec), "customers.view")
    by_prefix = {g.prefix: g for g in groups}
    assert by_prefix["g:"].windows == ("5m",) and not by_prefix["g:"].history
    assert by_prefix["r:customers:"].windows == ()  # always counted, nothing read
    night = by_prefix[match_group(None, True)]
    assert night.windows == ("1d",) and night.history
    assert [rule.id for rule, _ in pairs] == ["all-user", "per-resource", "night"]


def test_without_rules_the_user_and_resource_are_still_counted():
    groups, pairs = plan(None, count_event(view(rid=1)), "customers.view")
    assert [g.prefix for g in groups] == ["g:", "r:customers:"] and pairs == []


def test_plan_cache_answers_like_plan_and_forgets_a_replaced_rule_set(tmp_path):
    rules = rules_from(tmp_path, MATCH_RULES)
    cache = PlanCache()
    for rec in (view(rid=3), view(rid=4, when=NIGHT), record(operation="customers.list", when=NIGHT)):
        inc = count_event(rec)
        assert cache.plan(rules, inc, rec["operation"]) == plan(rules, inc, rec["operation"])
    inc = count_event(view(rid=3))
    assert cache.plan(None, inc, "customers.view") == plan(None, inc, "customers.view")
