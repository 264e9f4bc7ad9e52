"""Rule evaluation: deny wins, default deny, and the order of rules and files never matters.

Random rule sets (allow/deny of role memberships over a few operations) are compiled with the real
compiler and decided by the real engine; the expected effect is computed independently:

    any matching deny -> deny;  else any matching allow -> allow;  else deny (default-deny)
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy import PolicyEngine
from tests.policy.factories import DIRECTORY, INHERITS, compile_texts, make_ctx, rule
from tests.property.conftest import examples

OPS = ["customers.view", "customers.list", "deals.view"]
ROLES = ["sales_rep", "sales_manager", "admin", "support_agent", "reporting_service"]
USERS = [u for u, spec in DIRECTORY.items() if spec[4] == "active"]

RULES = st.lists(
    st.tuples(
        st.sampled_from(["allow", "deny"]),
        st.lists(st.sampled_from(ROLES), min_size=1, max_size=3, unique=True),
        st.lists(st.sampled_from(OPS), min_size=1, max_size=3, unique=True),
    ),
    min_size=1,
    max_size=6,
)


def texts(rules) -> list[str]:
    return [
        rule(f"r{i}", f"{kind}: {{role: {{in: [{', '.join(roles)}]}}}}", ops=", ".join(ops))
        for i, (kind, roles, ops) in enumerate(rules)
    ]


def effective_roles(user: str) -> set[str]:
    role = DIRECTORY[user][0]
    return {role} | INHERITS.get(role, set())


def expected(rules, user: str, op: str) -> str:
    held = effective_roles(user)
    fired = [kind for kind, roles, ops in rules if op in ops and held & set(roles)]
    if "deny" in fired:
        return "deny"
    return "allow" if "allow" in fired else "deny"


def engine(rule_texts: list[str]) -> PolicyEngine:
    policy, errors = compile_texts(*rule_texts)
    assert policy is not None and not errors, [str(e) for e in errors]
    return PolicyEngine(policy, revision="prop")


@settings(max_examples=examples(40, 1000), deadline=None)
@given(RULES, st.sampled_from(USERS), st.sampled_from(OPS), st.randoms(use_true_random=False))
def test_deny_wins_default_deny_and_order_does_not_matter(rules, user, op, rnd):
    ctx = make_ctx(op, user)
    forward = engine(texts(rules)).decide(ctx)
    assert forward.effect == expected(rules, user, op)
    shuffled = list(rules)
    rnd.shuffle(shuffled)
    reordered = engine(texts(shuffled)).decide(ctx)
    assert reordered.effect == forward.effect
    assert reordered.obligations == forward.obligations
    one_file = engine(["\n".join([texts(rules)[0]] + [t.split("rules:\n", 1)[1] for t in texts(rules)[1:]])])
    assert one_file.decide(ctx).effect == forward.effect
