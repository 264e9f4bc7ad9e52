"""``count_request`` (run once per counted request, so written for speed: user agents hashed through a
cache, one lookup per field, the time read once) builds the very request the plain definition does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.events import count_event
from gateway.signals.counters import RECENT_FIELDS, CountRequest, GroupQuery, count_request, short_hash
from tests.signals.factories import T0, record


def reference(inc: Any, rec: dict[str, Any], groups: list[GroupQuery]) -> CountRequest:
    """count_request as first written: every value computed from scratch."""
    seen: dict[str, str] = {}
    if inc.ip:
        seen["ip"] = inc.ip
    if inc.network:
        seen["net"] = inc.network
    if inc.country:
        seen["country"] = inc.country
    if inc.user_agent:
        seen["ua"] = short_hash(inc.user_agent)
    sequence = (inc.resource, inc.record_id) if inc.record_id is not None and inc.resource else None
    recent: dict[str, Any] = {k: rec.get(k) for k in RECENT_FIELDS if rec.get(k) is not None}
    agent = recent.get("user_agent")
    if isinstance(agent, str):
        recent["user_agent"] = agent[:120]
    return CountRequest(
        user=inc.user,
        t=int(inc.time.timestamp()),
        increments={k: v for k, v in inc.counts.items() if v},
        groups=groups,
        record_keys=inc.record_keys,
        sequence=sequence,
        seen=seen,
        recent=recent,
        ms=int(inc.time.timestamp() * 1000),
    )


AGENTS = st.one_of(st.sampled_from(["crm-client/1.0", "", "x" * 300]), st.text(max_size=20))


@settings(max_examples=200)
@given(
    agents=st.lists(AGENTS, min_size=1, max_size=6),
    micros=st.integers(0, 10**9),
    operation=st.sampled_from(["customers.view", "customers.list", "deals.delete", "settings"]),
    resource_id=st.sampled_from([None, "7", "abc"]),
    country=st.sampled_from([None, "FR", ""]),
    ip=st.sampled_from(["198.51.100.7", "2001:db8::1", ""]),
)
def test_count_request_equals_the_plain_definition(agents, micros, operation, resource_id, country, ip):
    groups = [GroupQuery("g:")]
    for agent in agents + agents:  # each agent twice: the second one comes from the cache
        rec = record(
            operation=operation,
            when=T0 + timedelta(microseconds=micros),
            resource_id=resource_id,
            country=country,
            ip=ip,
            user_agent=agent,
        )
        inc = count_event(rec)
        assert inc is not None
        got, want = count_request(inc, rec, groups), reference(inc, rec, groups)
        assert got == want
        assert list(got.recent or {}) == list(want.recent or {})  # the same order: the same recent line
