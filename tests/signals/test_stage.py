"""SignalsStage end to end on the in-process backend: shipped rules, alerts, block, step-up, queue."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from gateway.errors import Forbidden, Unauthenticated
from gateway.model import Flow
from gateway.signals import SignalsConfig, build_signals
from tests.conftest import RULES
from tests.policy.factories import make_ctx, make_identity
from tests.signals.factories import NIGHT, T0, delete, export, later, load, record, rules_from, view

FLOW = Flow(request_id="x")


@pytest.fixture
def shipped():
    rules, errors = load(RULES / "anomalies.yaml")
    assert rules is not None, errors
    return SimpleNamespace(anomalies=rules)  # what the pipeline passes: a RuleSet with .anomalies


async def feed(stage, ruleset, *records):
    for rec in records:
        stage.submit(FLOW, rec, ruleset)
    await stage.drain()


async def test_bulk_export_alerts_on_the_first_export_over_the_threshold(make_stage, sink, shipped):
    stage = await make_stage()
    await feed(stage, shipped, export(n=300, when=later(0)))
    assert sink.alerts == []
    await feed(stage, shipped, export(n=300, when=later(60)))
    (alert,) = sink.alerts
    assert (alert["rule"], alert["type"], alert["level"], alert["window"], alert["source"]) == (
        "bulk-export",
        "bulk-export",
        "high",
        "1h",
        "threshold",
    )
    assert alert["summary"] == "alice exported 600 records in 1h (usual daily max 0)"
    assert alert["evidence"]["counters"]["records_exported"] == 600
    assert [r["operation"] for r in alert["evidence"]["recent_requests"]] == ["customers.export"] * 2
    await feed(stage, shipped, export(n=300, when=later(120)))
    assert len(sink.alerts) == 1  # one finding per crossing


async def test_bulk_export_within_the_users_usual_volume_is_quiet(make_stage, sink, shipped):
    stage = await make_stage()
    await feed(stage, shipped, *[export(n=300, when=T0 - timedelta(days=1, seconds=i)) for i in range(1, 5)])
    sink.alerts.clear()  # yesterday's first bulk export did alert
    await feed(stage, shipped, export(n=300, when=later(0)), export(n=300, when=later(60)))
    assert sink.alerts == []  # 600 in an hour is less than 3 x 1200 (yesterday)


async def test_an_exception_silences_the_alert(make_stage, sink, shipped):
    stage = await make_stage()
    await feed(stage, shipped, *[export("svc-reporting", n=300, when=later(i)) for i in range(3)])
    assert sink.alerts == []
    assert [(f.rule.id, f.silenced_by) for f in stage.findings] == [("bulk-export", 0)]


async def test_mass_delete_blocks_the_users_next_requests_until_the_ttl(make_stage, sink, shipped, signals_clock):
    stage = await make_stage()
    alice, ctx = make_identity("alice"), make_ctx("customers.view")
    await feed(stage, shipped, *[delete(n=5, when=later(i)) for i in range(4)])
    assert stage.check(alice, ctx) is None  # 20 deleted: not more than 20
    await feed(stage, shipped, delete(n=1, when=later(10)))
    refusal = stage.check(alice, ctx)
    assert isinstance(refusal, Forbidden) and (refusal.status, refusal.reason, refusal.rule) == (
        403,
        "anomaly-block",
        "mass-delete",
    )
    assert sink.rules() == ["mass-delete"] and sink.alerts[0]["level"] == "critical"
    assert sink.alerts[0]["evidence"]["action"]["type"] == "block"
    assert stage.check(make_identity("bob"), ctx) is None
    assert stage.check(make_identity("alice", mfa=True), ctx) is not None  # MFA does not lift a block
    signals_clock.set(T0 + timedelta(minutes=59))
    assert stage.check(alice, ctx) is not None
    signals_clock.set(T0 + timedelta(minutes=61))
    assert stage.check(alice, ctx) is None


async def test_new_country_at_night_requires_step_up(make_stage, sink, shipped):
    stage = await make_stage()
    ctx = make_ctx("customers.view")
    await feed(stage, shipped, view(rid=1, country="FR", when=NIGHT - timedelta(days=2)))
    await feed(stage, shipped, view(rid=9, country="BR", ip="203.0.113.50", when=NIGHT))
    assert sink.rules() == ["new-country-off-hours"] and sink.alerts[0]["level"] == "high"
    refusal = stage.check(make_identity("alice"), ctx)
    assert isinstance(refusal, Unauthenticated) and (refusal.status, refusal.reason, refusal.rule) == (
        401,
        "step-up-required",
        "new-country-off-hours",
    )
    assert stage.check(make_identity("alice", mfa=True), ctx) is None


async def test_new_country_in_office_hours_is_a_medium_alert_only(make_stage, sink, shipped):
    stage = await make_stage()
    await feed(stage, shipped, view(rid=1, country="FR", when=T0 - timedelta(days=2)))
    await feed(stage, shipped, view(rid=9, country="BR", when=T0))
    assert [(a["rule"], a["level"]) for a in sink.alerts] == [("new-country", "medium")]
    assert stage.check(make_identity("alice"), make_ctx("customers.view")) is None


async def test_enumeration_by_sequential_ids_and_by_distinct_records(make_stage, sink, shipped):
    stage = await make_stage()
    await feed(stage, shipped, *[view(rid=100 + i, when=later(i)) for i in range(17)])
    assert sink.rules() == ["enumeration-sequential"]
    await feed(stage, shipped, *[view("bob", rid=7 * i, when=later(i)) for i in range(1, 52)])
    assert sink.rules() == ["enumeration-sequential", "enumeration-distinct"]
    assert sink.alerts[1]["summary"] == "bob opened 51 different customers records in 5m"


RULES_BLOCK_ALICE_EXCEPTED = """\
- id: deletes-block
  title: Deletes block
  count: deletes
  timespan: 1h
  condition: {gt: 1}
  level: critical
  action: block
  action_ttl: 1h
  summary: s
  exceptions: [{user: {in: [alice]}}]
- id: denials-block
  title: Denials block
  count: denials
  timespan: 1h
  condition: {gt: 1}
  level: high
  action: block
  action_ttl: 1h
  summary: s
"""


async def test_an_exception_never_lifts_a_block_from_another_rule(make_stage, sink, tmp_path):
    stage = await make_stage()
    rules = rules_from(tmp_path, RULES_BLOCK_ALICE_EXCEPTED)
    ctx = make_ctx("customers.view")
    await feed(stage, rules, *[delete(when=later(i)) for i in range(3)])
    assert stage.check(make_identity("alice"), ctx) is None and sink.alerts == []  # silenced: no block
    await feed(stage, rules, *[record(effect="deny", status=403, when=later(10 + i)) for i in range(2)])
    assert stage.check(make_identity("alice"), ctx).rule == "denials-block"
    await feed(stage, rules, *[delete(when=later(20 + i)) for i in range(3)])
    assert stage.check(make_identity("alice"), ctx).reason == "anomaly-block"


async def test_submit_never_raises_and_counts_what_it_drops(sink):
    stage = build_signals(SignalsConfig(queue_size=2), redis_url=None, alerts=sink)
    for _ in range(5):
        stage.submit(FLOW, record(), None)
    assert stage.health()["queued"] == 2 and stage.health()["dropped"] == 3
    await stage.drain()  # not started: drain does the work itself
    assert (stage.health()["queued"], stage.health()["counted"]) == (0, 2)


async def test_records_without_a_user_or_unparseable_are_skipped(make_stage, shipped):
    stage = await make_stage()
    await feed(stage, shipped, {**record(), "user": None}, {**record(), "time": "yesterday"}, record())
    assert stage.health()["counted"] == 1


class BrokenSink:
    async def raise_alert(self, **kwargs):
        raise RuntimeError("alert store down")


async def test_a_failing_alert_sink_does_not_stop_counting(make_stage, shipped):
    stage = await make_stage(alerts=BrokenSink())
    await feed(stage, shipped, *[delete(n=30, when=later(0))])
    await feed(stage, shipped, record(when=later(1)))
    health = stage.health()
    assert (health["alerts_failed"], health["counted"]) == (1, 2)
    assert stage.check(make_identity("alice"), make_ctx("customers.view")) is not None  # the block still holds


async def test_health_of_the_memory_backend(make_stage):
    stage = await make_stage()
    assert stage.health() == {
        "backend": "memory",
        "state": "ok",
        "connected": True,
        "degraded": False,
        "problems": [],
        "last_error": None,
        "last_write": None,
        "data_lost": False,
        "epoch": None,
        "losses_reported": 0,
        "queued": 0,
        "dropped": 0,
        "counted": 0,
        "findings": 0,
        "alerts_raised": 0,
        "alerts_failed": 0,
        "enforcement": {"block": 0, "step_up": 0},
    }


def test_redis_backend_needs_a_url(sink):
    with pytest.raises(ValueError, match="no Redis URL"):
        build_signals(SignalsConfig(backend="redis"), redis_url=None, alerts=sink)
