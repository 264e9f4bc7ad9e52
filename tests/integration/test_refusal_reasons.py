"""What a refused client is told and what the audit line records: the deciding rule and criterion, or
``default-deny`` naming no rule when no allow rule was for the caller."""

from __future__ import annotations

from tests.integration.conftest import audit_lines, auth

OFFICE = "10.1.2.3"
NO_WRITES_FOR_SUPPORT = """\
format: crmgw.rules/v1
rules:
  - id: support-no-writes
    title: Support agents never change or delete records
    match: {operations: ["*"]}
    deny:
      and:
        - role: {in: [support_agent]}
        - method: {in: [PUT, PATCH, DELETE]}
"""


async def test_a_reps_delete_is_a_default_deny_that_names_no_rule(gw, tmp_path):
    resp = await gw.delete("/api/customers/7", headers=auth("alice", ip=OFFICE))
    body = await resp.json()
    assert (resp.status, body["reason"]) == (403, "default-deny")
    assert "rule" not in body  # not admin-manage-records, which is for administrators
    line = audit_lines(tmp_path)[-1]
    assert (line["reason"], line["rules"], line["reasons"]) == ("default-deny", [], ["default-deny"])


async def test_a_method_based_deny_names_its_rule_and_the_method(make_gateway, crm, rules_copy, tmp_path):
    (rules_copy / "policies" / "50-support-no-writes.yaml").write_text(NO_WRITES_FOR_SUPPORT)
    gw = await make_gateway(crm, rules=rules_copy)
    resp = await gw.put("/api/customers/7", json={"name": "x"}, headers=auth("frank", ip=OFFICE))
    body = await resp.json()
    assert (resp.status, body["reason"], body["rule"]) == (403, "method-unauthorized", "support-no-writes")
    line = audit_lines(tmp_path)[-1]
    assert (line["reason"], line["rules"]) == ("method-unauthorized", ["support-no-writes"])
