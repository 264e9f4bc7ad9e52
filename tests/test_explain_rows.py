"""How one rule's trace reads in ``crmgw explain`` and the console: its condition tree, row by row."""

from __future__ import annotations

from gateway.explain import trace_rows


def crit(name, result, reason):
    return {"criterion": name, "result": result, "reason": reason}


def test_a_not_around_a_criterion_shares_its_row_and_the_criteria_outside_the_block_follow():
    role, office = crit("role", True, "role-ok"), crit("source_ip", False, "source-ip-ok")
    scope = crit("data_scope", False, "data-scope-undefined")
    entry = {
        "criteria": [role, office, scope],
        "condition": {
            "op": "and",
            "result": True,
            "children": [role, {"op": "not", "result": True, "children": [office]}],
        },
    }
    assert [(r["depth"], r["label"], r["result"], r["reason"]) for r in trace_rows(entry)] == [
        (0, "and", True, ""),
        (1, "role", True, "role-ok"),
        (1, "not source_ip", True, "source_ip is false: source-ip-ok"),
        (0, "data_scope", False, "data-scope-undefined"),
    ]


def test_a_not_around_a_block_keeps_its_own_row():
    a, b = crit("query", False, "query-out-of-bounds"), crit("query", None, "query-unknown")
    entry = {
        "criteria": [a, b],
        "condition": {"op": "not", "result": None, "children": [{"op": "or", "result": None, "children": [a, b]}]},
    }
    assert [(r["depth"], r["label"], r["result"]) for r in trace_rows(entry)] == [
        (0, "not", None),
        (1, "or", None),
        (2, "query", False),
        (2, "query", None),
    ]


def test_without_a_condition_tree_the_criteria_are_listed_flat():
    grant = crit("grant", False, "grant-expired")
    assert [(r["label"], r["reason"]) for r in trace_rows({"criteria": [grant]})] == [("grant", "grant-expired")]
