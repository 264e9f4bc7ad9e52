"""A cached decision equals a fresh one (gateway.policy.cache), on the shipped rules and grants.

One engine keeps its cache across every generated example, so most decisions after the first few
come from the cache (facts are drawn from small sets: instants around the windows' and the grants'
boundaries, office / partner / outside addresses, a few countries and query values, approved access
grants); a second engine without a cache decides each context afresh. A fact a criterion reads
but does not declare, or time quantised too coarsely, shows up as a difference.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import RequestContext
from gateway.policy import PolicyEngine
from gateway.policy.compiled import CompiledGrant
from tests.policy.factories import DIRECTORY, OPERATIONS, make_ctx
from tests.policy.test_shipped_rules import load
from tests.property.conftest import examples

POLICY, ERRORS = load()
assert POLICY is not None, ERRORS
CACHED = PolicyEngine(POLICY, revision="shipped")
FRESH = PolicyEngine(POLICY, revision="shipped", cache_size=0)

INSTANTS = [
    datetime.fromisoformat(t)
    for t in (
        "2026-11-24T07:59:59+01:00",
        "2026-11-24T08:00:00+01:00",
        "2026-11-24T09:59:59.999+01:00",
        "2026-11-24T10:00:00+01:00",
        "2026-11-24T17:59:59+01:00",
        "2026-11-24T18:00:00+01:00",
        "2026-11-24T20:00:00+01:00",
        "2026-11-28T10:00:00+01:00",  # a Saturday
        "2026-11-01T00:00:00+01:00",  # a grant's ``from``
        "2027-01-31T18:00:00+01:00",  # a grant's ``until``
        "2026-11-24T10:00:00+08:00",  # Shanghai office hours
    )
]
SHIFTS = [timedelta(0), timedelta(seconds=-1), timedelta(milliseconds=1), timedelta(seconds=30)]
IPS = ["10.1.2.3", "198.51.100.7", "203.0.113.5", None]
COUNTRIES = [None, "FR", "KP", "US"]
QUERIES = [{}, {"page_size": "50"}, {"page_size": "500"}, {"page": "1", "page_size": "20"}]


def access_grant(user: str, operation: str, until: datetime) -> CompiledGrant:
    """An approved access request (gateway.access) as the pipeline passes it to the engine."""
    return CompiledGrant(f"access-{user}-{operation}", user, frozenset({operation}), until, None, "own", "request")


CONTEXTS = st.builds(
    lambda op, user, ip, country, when, shift, mfa, query, grant: (
        make_ctx(op, user, ip=ip, country=country, now=when + shift, mfa=mfa, query=query),
        (access_grant(user, op, INSTANTS[3]),) if grant else (),
    ),
    st.sampled_from(sorted(OPERATIONS)),
    st.sampled_from(sorted(DIRECTORY)),
    st.sampled_from(IPS),
    st.sampled_from(COUNTRIES),
    st.sampled_from(INSTANTS),
    st.sampled_from(SHIFTS),
    st.booleans(),
    st.sampled_from(QUERIES),
    st.booleans(),
)


@settings(max_examples=examples(300, 5000), deadline=None)
@given(CONTEXTS)
def test_a_cached_decision_equals_a_fresh_one(case: tuple[RequestContext, tuple[CompiledGrant, ...]]) -> None:
    ctx, grants = case
    assert CACHED.decide(ctx, grants) == FRESH.decide(ctx, grants)


def test_most_decisions_of_a_repeated_mix_come_from_the_cache_and_all_equal_fresh_ones() -> None:
    engine = PolicyEngine(POLICY, revision="shipped")
    mix = itertools.product(["customers.view", "customers.export"], ["alice", "frank", "dave"], IPS, INSTANTS[:8])
    contexts = [make_ctx(op, user, ip=ip, now=when) for op, user, ip, when in mix]
    for ctx in contexts + contexts:  # the second pass is answered from the cache
        assert engine.decide(ctx) == FRESH.decide(ctx)
    assert engine.cache.hits >= len(contexts)
