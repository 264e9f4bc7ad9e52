"""Decisions: deny wins, otherwise any allow, otherwise deny; obligations, shadow, step-up."""

from __future__ import annotations

import itertools
import random

import pytest

from gateway.model import Mask

from .factories import make_ctx, make_engine, make_identity, rule

READ = "customers.list, customers.view"
SALES_READ = rule(
    "sales-read",
    "allow: {role: {in: [sales_rep]}}",
    READ,
    "data_scope: {sales_rep: own, sales_manager: team, admin: all}",
)
SUPPORT_READ = rule(
    "support-read",
    "allow: {role: {in: [support_agent]}}",
    READ,
    """\
    data_scope: {support_agent: all}
    mask:
      - {field: complaints, op: remove}
      - {field: phone, op: redact, keep_last: 4}
""",
)
DENY_KP = rule("deny-kp", "deny: {country: {in: [KP]}}", "'*'")
REP_HOURS = rule(
    "rep-hours",
    """deny:
      and:
        - role: {in: [sales_rep]}
        - not: {role: {in: [sales_manager]}}
        - not: {time_window: {timezone: Europe/Paris, days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00"}}""",
    READ,
)
EXPORT_MFA = rule("export-mfa", "allow: {and: [{role: {in: [admin]}}, {mfa: true}]}", "customers.export")


def test_unauthenticated_is_401():
    decision = make_engine(SALES_READ).decide(make_ctx(user=None))
    assert (decision.effect, decision.status, decision.reason) == ("deny", 401, "unauthenticated")


def test_unknown_operation_is_denied():
    decision = make_engine(SALES_READ).decide(make_ctx(None))
    assert (decision.effect, decision.status, decision.reason) == ("deny", 403, "operation-unknown")


def test_inactive_user_is_denied_even_when_a_rule_allows():
    assert make_engine(SALES_READ).decide(make_ctx(user="ivan")).reason == "user-inactive"


def test_allow():
    decision = make_engine(SALES_READ).decide(make_ctx(user="alice"))
    assert (decision.effect, decision.rules, decision.reasons) == ("allow", ("sales-read",), ("role-ok",))
    assert decision.revision == "test-rev"


def test_default_deny_without_rules_for_the_operation():
    decision = make_engine(SALES_READ).decide(make_ctx("deals.view"))
    assert (decision.effect, decision.reason, decision.rules, decision.trace) == ("deny", "default-deny", (), ())


def test_allow_rule_for_another_role_is_not_named():
    decision = make_engine(SALES_READ).decide(make_ctx(user="heidi"))
    assert (decision.effect, decision.reason, decision.rules, decision.reasons) == (
        "deny",
        "default-deny",
        (),
        ("default-deny",),
    )
    assert [(t.rule, t.criteria[0].reason) for t in decision.trace] == [("sales-read", "role-unauthorized")]


def test_allow_rule_for_the_caller_gives_its_failing_condition():
    office = rule("office", "allow: {and: [{role: {in: [sales_rep]}}, {source_ip: {in: [192.168.0.0/16]}}]}")
    decision = make_engine(office).decide(make_ctx(user="alice"))
    assert (decision.reason, decision.rules, decision.reasons) == (
        "source-ip-unauthorized",
        ("office",),
        ("source-ip-unauthorized",),
    )


ADMIN_EVERYTHING = rule("admin-everything", "allow: {role: {in: [admin]}}", "'*'")
MANAGERS_DELETE = rule("managers-delete", "allow: {role: {in: [sales_manager]}}", "customers.delete")


def test_a_reps_delete_is_default_deny_naming_no_rule():
    decision = make_engine(ADMIN_EVERYTHING, MANAGERS_DELETE, SALES_READ).decide(make_ctx("customers.delete", "alice"))
    assert (decision.effect, decision.status, decision.reason, decision.rules, decision.reasons) == (
        "deny",
        403,
        "default-deny",
        (),
        ("default-deny",),
    )
    assert [t.rule for t in decision.trace] == ["admin-everything", "managers-delete"]  # still explained


def test_a_method_mismatch_gives_its_own_reason_not_the_nearest_rules_role():
    reps_read_only = rule(
        "reps-read-only", "allow: {and: [{role: {in: [sales_rep]}}, {method: {in: [GET]}}]}", "'customers.*'"
    )
    decision = make_engine(ADMIN_EVERYTHING, reps_read_only).decide(make_ctx("customers.update", "alice"))
    assert (decision.reason, decision.rules, decision.reasons) == (
        "method-unauthorized",
        ("reps-read-only",),
        ("method-unauthorized",),
    )


def test_a_method_based_deny_names_the_method_and_its_rule():
    no_writes = rule(
        "support-no-writes", "deny: {and: [{role: {in: [support_agent]}}, {method: {in: [PUT, DELETE]}}]}", "'*'"
    )
    decision = make_engine(ADMIN_EVERYTHING, SUPPORT_READ, no_writes).decide(make_ctx("customers.delete", "frank"))
    assert (decision.reason, decision.rules, decision.reasons) == (
        "method-unauthorized",
        ("support-no-writes",),
        ("method-unauthorized", "role-unauthorized"),
    )


def test_a_role_decides_a_deny_only_when_the_rule_has_nothing_else():
    no_support = rule("no-support", "deny: {role: {in: [support_agent]}}", READ)
    decision = make_engine(SUPPORT_READ, no_support).decide(make_ctx(user="frank"))
    assert (decision.reason, decision.rules) == ("role-unauthorized", ("no-support",))


def test_the_deny_rule_that_gave_the_reason_comes_first():
    reps = rule("a-no-reps", "deny: {role: {in: [sales_rep]}}", READ)
    decision = make_engine(SALES_READ, reps, REP_HOURS).decide(make_ctx(user="alice", now="2026-11-24T19:00:00+01:00"))
    assert (decision.reason, decision.rules) == ("time-window-outside", ("rep-hours", "a-no-reps"))


def test_a_branch_for_another_role_does_not_explain_the_denial():
    either = rule(
        "either",
        """allow:
      or:
        - role: {in: [admin]}
        - and: [{role: {in: [sales_rep]}}, {source_ip: {in: [192.168.0.0/16]}}]""",
    )
    decision = make_engine(either).decide(make_ctx(user="alice"))
    assert (decision.reason, decision.rules) == ("source-ip-unauthorized", ("either",))
    assert decision.reasons == ("source-ip-unauthorized", "role-unauthorized")


def test_every_allow_rule_for_the_caller_is_named_the_closest_first():
    office = rule("b-office", "allow: {and: [{role: {in: [sales_rep]}}, {source_ip: {in: [192.168.0.0/16]}}]}")
    paris = rule("a-paris", "allow: {and: [{role: {in: [sales_rep]}}, {country: {in: [FR]}}, {mfa: true}]}")
    decision = make_engine(office, paris, ADMIN_EVERYTHING).decide(make_ctx(user="alice", country="DE"))
    assert (decision.reason, decision.rules) == ("source-ip-unauthorized", ("b-office", "a-paris"))


def test_closest_allow_rule_explains_the_denial():
    near = rule("near", "allow: {and: [{role: {in: [sales_rep]}}, {source_ip: {in: [192.168.0.0/16]}}]}")
    far = rule(
        "far", "allow: {and: [{role: {in: [admin]}}, {country: {in: [FR]}}, {source_ip: {in: [192.168.0.0/16]}}]}"
    )
    decision = make_engine(near, far).decide(make_ctx(user="alice", country="DE"))
    assert (decision.reason, decision.rules) == ("source-ip-unauthorized", ("near",))


def test_deny_wins_over_allow():
    decision = make_engine(SALES_READ, DENY_KP).decide(make_ctx(user="alice", country="KP"))
    assert (decision.effect, decision.reason, decision.rules) == ("deny", "country-denied", ("deny-kp",))


def test_missing_fact_never_lifts_a_deny():
    decision = make_engine(SALES_READ, DENY_KP).decide(make_ctx(user="alice", country=None))
    assert (decision.effect, decision.reason) == ("deny", "country-unknown")


def test_missing_fact_never_grants():
    office = rule("office", "allow: {source_ip: {in: [10.0.0.0/8]}}")
    decision = make_engine(office).decide(make_ctx(ip=None))
    assert (decision.effect, decision.reason) == ("deny", "source-ip-unknown")


def test_user_without_roles_is_never_allowed():
    office = rule("office", "allow: {source_ip: {in: [10.0.0.0/8]}}")
    decision = make_engine(office).decide(make_ctx(user=make_identity("alice", roles=())))
    assert (decision.effect, decision.reason) == ("deny", "role-unauthorized")


@pytest.mark.parametrize(
    ("now", "user", "effect", "reason"),
    [
        ("2026-11-24T17:59:00+01:00", "alice", "allow", "allowed"),
        ("2026-11-24T18:30:00+01:00", "alice", "deny", "time-window-outside"),
        ("2026-11-24T18:30:00+01:00", "dave", "allow", "allowed"),  # managers are not reps-only
        ("2026-11-24T18:30:00+01:00", "grace", "allow", "allowed"),
        # the Monday after the spring change: 16:30Z is 18:30 in Paris, 15:59Z is 17:59
        ("2026-03-30T16:30:00+00:00", "alice", "deny", "time-window-outside"),
        ("2026-03-30T15:59:00+00:00", "alice", "allow", "allowed"),
    ],
)
def test_deny_reason_is_the_most_specific_criterion(now, user, effect, reason):
    decision = make_engine(SALES_READ, REP_HOURS).decide(make_ctx(user=user, now=now))
    assert (decision.effect, decision.reason) == (effect, reason)


def test_deny_lists_all_reasons_of_its_rule():
    decision = make_engine(SALES_READ, REP_HOURS).decide(make_ctx(user="alice", now="2026-11-24T19:00:00+01:00"))
    assert decision.reasons == ("time-window-outside", "role-unauthorized")
    assert decision.rules == ("rep-hours",)


@pytest.mark.parametrize(("user", "scope"), [("alice", "own"), ("dave", "team"), ("grace", "all")])
def test_widest_scope_of_the_callers_roles(user, scope):
    assert make_engine(SALES_READ).decide(make_ctx(user=user)).obligations.scope == scope


def test_widest_scope_among_allowing_rules():
    region = rule(
        "east-region", "allow: {attribute: {name: team, in: [east]}}", READ, "data_scope: {sales_rep: region}"
    )
    decision = make_engine(SALES_READ, region).decide(make_ctx(user="alice"))
    assert decision.obligations.scope == "region"
    assert decision.rules == ("east-region", "sales-read")


def test_rule_without_data_scope_grants_all():
    plain = rule("plain", "allow: {role: {in: [sales_rep]}}")
    assert make_engine(plain).decide(make_ctx(user="alice")).obligations.scope == "all"


def test_data_scope_without_the_callers_role_grants_nothing():
    managers_only = rule("managers", "allow: {role: {in: [sales_rep]}}", READ, "data_scope: {sales_manager: team}")
    decision = make_engine(managers_only).decide(make_ctx(user="alice"))
    assert (decision.effect, decision.reason, decision.rules) == ("deny", "data-scope-undefined", ("managers",))
    assert decision.trace[0].criteria[-1].reason == "data-scope-undefined"


def test_masks_are_the_union_of_allowing_rules():
    more = rule(
        "more",
        "allow: {role: {in: [support_agent]}}",
        READ,
        """\
        mask:
          - {field: phone, op: redact, keep_last: 4}
          - {field: quote_price, op: remove}
    """,
    )
    decision = make_engine(SUPPORT_READ, more).decide(make_ctx(user="frank"))
    assert decision.obligations.masks == (
        Mask("complaints", "remove"),
        Mask("phone", "redact", 4),
        Mask("quote_price", "remove"),
    )
    assert decision.obligations.scope == "all"


def test_masks_of_rules_that_did_not_allow_do_not_apply():
    decision = make_engine(SALES_READ, SUPPORT_READ).decide(make_ctx(user="alice"))
    assert decision.obligations.masks == ()


def test_step_up_when_only_mfa_is_missing():
    decision = make_engine(EXPORT_MFA).decide(make_ctx("customers.export", user="grace"))
    assert (decision.effect, decision.status, decision.reason, decision.rules) == (
        "deny",
        401,
        "mfa-required",
        ("export-mfa",),
    )


def test_mfa_login_is_allowed():
    assert make_engine(EXPORT_MFA).decide(make_ctx("customers.export", user="grace", mfa=True)).allowed


def test_no_step_up_when_more_than_mfa_is_missing():
    # the rule is for admins: a second factor would not help a rep, and the rule is not named
    decision = make_engine(EXPORT_MFA).decide(make_ctx("customers.export", user="alice"))
    assert (decision.status, decision.reason, decision.rules) == (403, "default-deny", ())


def test_no_step_up_when_a_condition_besides_mfa_fails():
    office_mfa = rule(
        "export-office-mfa",
        "allow: {and: [{role: {in: [admin]}}, {mfa: true}, {source_ip: {in: [192.168.0.0/16]}}]}",
        "customers.export",
    )
    decision = make_engine(office_mfa).decide(make_ctx("customers.export", user="grace"))
    assert (decision.status, decision.reason, decision.rules) == (403, "source-ip-unauthorized", ("export-office-mfa",))


def test_no_step_up_past_a_deny():
    decision = make_engine(EXPORT_MFA, DENY_KP).decide(make_ctx("customers.export", user="grace", country="KP"))
    assert (decision.status, decision.reason) == (403, "country-denied")


def test_shadow_deny_is_reported_not_enforced():
    shadow = rule("try-bulk", "deny: {query: {param: page_size, gte: 51}}", READ, "mode: shadow")
    decision = make_engine(SALES_READ, shadow).decide(make_ctx(user="alice", query={"page_size": "100"}))
    assert decision.allowed
    assert [(s.rule, s.would, s.reason) for s in decision.shadow] == [("try-bulk", "deny", "query-out-of-bounds")]
    assert "try-bulk" not in decision.rules


def test_shadow_allow_does_not_grant():
    shadow = rule("try-support", "allow: {role: {in: [security_analyst]}}", READ, "mode: shadow")
    decision = make_engine(SALES_READ, shadow).decide(make_ctx(user="heidi"))
    assert not decision.allowed
    assert [(s.rule, s.would) for s in decision.shadow] == [("try-support", "allow")]


def test_shadow_rule_that_does_not_fire_is_traced_only():
    shadow = rule("try-bulk", "deny: {query: {param: page_size, gte: 51}}", READ, "mode: shadow")
    decision = make_engine(SALES_READ, shadow).decide(make_ctx(user="alice"))
    assert decision.shadow == ()
    assert [(t.rule, t.mode, t.matched) for t in decision.trace] == [
        ("try-bulk", "shadow", False),
        ("sales-read", "enforce", True),
    ]


def test_disabled_rule_is_skipped():
    off = rule("switched-off", "deny: {role: {in: [sales_rep]}}", READ, "status: disabled")
    decision = make_engine(SALES_READ, off).decide(make_ctx(user="alice"))
    assert decision.allowed
    assert "switched-off" not in [t.rule for t in decision.trace]


def test_trace_lists_every_evaluated_rule_with_criteria():
    decision = make_engine(SALES_READ, SUPPORT_READ, DENY_KP).decide(make_ctx(user="alice", country="FR"))
    assert [(t.rule, t.kind, t.matched) for t in decision.trace] == [
        ("deny-kp", "deny", False),
        ("sales-read", "allow", True),
        ("support-read", "allow", False),
    ]
    assert [c.reason for c in decision.trace[0].criteria] == ["country-ok"]
    assert [c.reason for c in decision.trace[2].criteria] == ["role-unauthorized"]


CONTEXTS = [
    make_ctx(op, user, country=country, now=now, mfa=mfa)
    for op, user, country, now, mfa in itertools.product(
        ["customers.view", "customers.export", "deals.list"],
        ["alice", "dave", "frank", "grace", "heidi"],
        ["FR", "KP", None],
        ["2026-11-24T10:00:00+01:00", "2026-11-24T20:00:00+01:00"],
        [False, True],
    )
]


def test_decisions_do_not_depend_on_rule_order():
    texts = [SALES_READ, SUPPORT_READ, DENY_KP, REP_HOURS, EXPORT_MFA]
    reference = make_engine(*texts)
    expected = [reference.decide(ctx) for ctx in CONTEXTS]
    rng = random.Random(1234)
    for _ in range(5):
        rng.shuffle(texts)
        engine = make_engine(*texts)
        assert [engine.decide(ctx) for ctx in CONTEXTS] == expected


def test_decisions_do_not_depend_on_order_inside_one_file():
    blocks = [text.split("rules:\n", 1)[1] for text in (SALES_READ, SUPPORT_READ, DENY_KP, REP_HOURS, EXPORT_MFA)]
    header = "format: crmgw.rules/v1\nrules:\n"
    forward = make_engine(header + "".join(blocks))
    backward = make_engine(header + "".join(reversed(blocks)))
    assert [backward.decide(ctx) for ctx in CONTEXTS] == [forward.decide(ctx) for ctx in CONTEXTS]
