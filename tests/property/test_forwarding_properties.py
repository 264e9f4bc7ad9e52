"""End to end: for any target, what the CRM stand-in receives is exactly what was decided, or nothing.

The gateway and the stand-in are started once per test function; hypothesis sends many targets
through them over a raw socket (the fixtures are reused across examples on purpose).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.context.normalise import normalise_target, parse_query
from gateway.errors import AmbiguousRequest
from tests.adversarial.conftest import GRACE, make_gw, standin  # noqa: F401 (fixtures)
from tests.adversarial.wire import exchange, request
from tests.property.conftest import examples
from tests.property.test_normalise_properties import CATALOGUE, TARGETS

# The gateway's own routes are not proxied: /healthz, /readyz, /metrics, /_gw/...
OWN_ROUTES = ("/healthz", "/readyz", "/metrics", "/_gw/")
printable_targets = TARGETS.filter(
    lambda t: all(0x21 <= ord(c) <= 0x7E for c in t) and t.startswith("/") and not t.startswith(OWN_ROUTES)
)


@settings(
    max_examples=examples(60, 2000),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(target=printable_targets, query=st.sampled_from(["", "page_size=5", "x=%2e%2e%2f"]))
async def test_what_reaches_the_crm_is_what_was_decided(make_gw, standin, target, query):
    gw = await make_gw() if not hasattr(standin, "gw") else standin.gw
    standin.gw = gw
    full = target + ("?" + query if query and "?" not in target else "")
    before = len(standin.seen)
    answer = await exchange(gw.port, request(full, GRACE))
    arrived = standin.seen[before:]
    try:
        path, raw_query = normalise_target(full)
        refused = "_method" in parse_query(raw_query)
    except AmbiguousRequest:
        path, refused = "", True
    if path.startswith(OWN_ROUTES):  # e.g. /%72eadyz: aiohttp routes the decoded path to its own page
        return
    if refused:
        assert answer.status == 400 and arrived == []
        return
    if CATALOGUE.match("GET", path) is None:
        assert answer.status == 403 and arrived == []
        return
    assert answer.status == 200 and len(arrived) == 1
    assert arrived[0].target == path + ("?" + raw_query if raw_query else "")
