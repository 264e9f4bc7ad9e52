"""Verdicts, bulk triage, incidents and risk scores (issue 16 points 1, 2 and 4) on a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.alerts.incidents import group_incidents, shared_evidence
from gateway.alerts.model import Alert, InvalidTransition, classification
from gateway.alerts.risk import user_risks
from gateway.alerts.triage import bulk_triage
from gateway.alerts.verdicts import read_verdicts, write_verdicts
from tests.alerts.conftest import raise_kwargs


async def test_a_verdict_closes_the_alert_with_its_status_and_is_journalled(make_store, redis_url):
    store = await make_store(redis_url)
    tp = await store.raise_alert(**raise_kwargs(window="a"))
    btp = await store.raise_alert(**raise_kwargs(window="b"))
    fp = await store.raise_alert(**raise_kwargs(window="c"))
    a = await store.transition(tp, actor="heidi", verdict="true_positive", determination="compromised_account")
    b = await store.transition(btp, actor="heidi", verdict="benign_true_positive", determination="test")
    c = await store.transition(fp, actor="heidi", verdict="false_positive", note="known job")
    assert (a.status, a.verdict, a.determination) == ("resolved", "true_positive", "compromised_account")
    assert (b.status, c.status) == ("resolved", "false_positive")
    assert [h.action for h in a.history[-2:]] == ["verdict", "resolve"]
    assert a.history[-2].to == "true_positive/compromised_account" and a.history[-2].actor == "heidi"
    # the journal (replayed by a second store on the same file, no Redis) has the same copies
    again = await make_store(None, journal=store.journal.path, writer="w2")
    assert (await again.get(tp)).determination == "compromised_account"


async def test_a_verdict_can_be_corrected_but_not_contradict_its_status(make_store):
    store = await make_store()
    alert_id = await store.raise_alert(**raise_kwargs())
    await store.transition(alert_id, actor="heidi", verdict="true_positive")
    fixed = await store.transition(alert_id, actor="ivan", verdict="benign_true_positive", determination="test")
    assert (fixed.status, fixed.verdict, fixed.history[-1].action) == ("resolved", "benign_true_positive", "verdict")
    with pytest.raises(ValueError, match="closes an alert as resolved"):
        await store.transition(alert_id, actor="heidi", status="false_positive", verdict="true_positive")
    with pytest.raises(ValueError, match="unknown determination"):
        await store.transition(alert_id, actor="heidi", verdict="true_positive", determination="aliens")
    with pytest.raises(ValueError, match="needs a verdict"):
        await store.transition(alert_id, actor="heidi", determination="test")


async def test_the_verdicts_feed_still_reads_old_alerts_and_adds_the_classification(make_store, tmp_path):
    store = await make_store()
    old = await store.raise_alert(**raise_kwargs(window="old"))
    await store.transition(old, actor="heidi", status="resolved")  # the pre-verdict way
    new = await store.raise_alert(**raise_kwargs(window="new"))
    await store.transition(new, actor="ivan", verdict="benign_true_positive", determination="policy_violation")
    fp = await store.raise_alert(**raise_kwargs(window="fp"))
    await store.transition(fp, actor="ivan", status="false_positive")
    assert write_verdicts(store.journal.path, tmp_path / "v.jsonl") == 3
    rows = {r["alert_id"]: r for r in read_verdicts(store.journal.path)}
    assert (rows[old]["verdict"], rows[old]["classification"], rows[old]["determination"]) == (
        "confirmed",
        "true_positive",
        None,
    )
    assert (rows[new]["verdict"], rows[new]["classification"], rows[new]["analyst"]) == (
        "confirmed",
        "benign_true_positive",
        "ivan",
    )
    assert rows[new]["determination"] == "policy_violation"
    assert (rows[fp]["verdict"], rows[fp]["classification"]) == ("false_positive", "false_positive")
    # a journal line written before the fields existed still validates
    line = (await store.get(old)).to_dict()
    del line["verdict"], line["determination"]
    assert classification(Alert.model_validate(line)) == "true_positive"


async def test_bulk_resolve_applies_to_each_alert_and_reports_refusals(make_store, redis_url):
    store = await make_store(redis_url)
    ids = [await store.raise_alert(**raise_kwargs(window=f"w{i}")) for i in range(20)]
    await store.transition(ids[0], actor="heidi", status="false_positive")
    result = await bulk_triage(
        store, [*ids, "NOPE", ids[1]], actor="heidi", action="resolve", verdict="true_positive", note="one campaign"
    )
    assert len(result.done) == 20 and set(result.refused) == {"NOPE"}  # ids[0]: FP corrected into a TP
    closed = [await store.get(i) for i in ids]
    assert {(a.status, a.verdict) for a in closed} == {("resolved", "true_positive")}
    assert all(a.notes[-1].text == "one campaign" and a.notes[-1].actor == "heidi" for a in closed)
    with pytest.raises(ValueError, match="needs a verdict"):
        await bulk_triage(store, ids, actor="heidi", action="resolve")
    refused = await bulk_triage(store, ids[:2], actor="heidi", action="ack")
    assert refused.done == [] and "cannot become acknowledged" in refused.refused[ids[0]]


async def test_bulk_ack_and_assign(make_store):
    store = await make_store()
    ids = [await store.raise_alert(**raise_kwargs(window=f"w{i}")) for i in range(3)]
    assert len((await bulk_triage(store, ids, actor="heidi", action="ack")).done) == 3
    await bulk_triage(store, ids, actor="heidi", action="assign", assignee="ivan")
    assert {(a.status, a.assignee) for a in [await store.get(i) for i in ids]} == {("acknowledged", "ivan")}
    with pytest.raises(InvalidTransition):
        await store.transition(ids[0], actor="heidi", status="acknowledged")


def _alert(id_: str, user: str, at: datetime, level="medium", **over) -> Alert:
    stamp = at.isoformat().replace("+00:00", "Z")
    history = [{"time": stamp, "actor": "gateway", "action": "raised", "to": "open"}]
    return Alert.model_validate(
        {"id": id_, "time": stamp, "last_seen": stamp, "user": user, "type": "t", "level": level, "score": 1.0}
        | {"summary": "s", "history": history, **over}
    )


def test_incidents_group_a_users_alerts_within_a_day_with_the_highest_severity():
    t0 = datetime(2026, 3, 3, 9, tzinfo=UTC)
    alerts = [
        _alert("01A", "grace", t0),
        _alert("01B", "grace", t0 + timedelta(hours=5), level="critical", assignee="heidi"),
        _alert("01C", "grace", t0 + timedelta(hours=20)),
        _alert("01D", "grace", t0 + timedelta(days=3)),  # a new episode
        _alert("01E", "bob", t0 + timedelta(hours=1), evidence={"request": {"client_ip": "10.9.9.9"}}),
        _alert("01F", "carol", t0, evidence={"client_ip": "10.9.9.9"}),
    ]
    incidents = group_incidents(alerts)
    by_id = {i.id: i for i in incidents}
    first = by_id["01A"]
    assert [a.id for a in first.alerts] == ["01A", "01B", "01C"]
    assert (first.severity, first.status, first.assignee) == ("critical", "open", "heidi")
    assert incidents[0] is first  # highest open severity first
    assert [a.id for a in by_id["01D"].alerts] == ["01D"]
    assert [(h["alert"], h["action"]) for h in first.timeline()] == [
        ("01A", "raised"),
        ("01B", "raised"),
        ("01C", "raised"),
    ]
    related = shared_evidence(by_id["01E"], alerts)
    assert [(a.id, why) for a, why in related] == [("01F", "client_ip=10.9.9.9")]


def test_risk_is_a_decaying_sum_where_false_positives_count_zero():
    now = datetime(2026, 3, 10, tzinfo=UTC)
    alerts = [
        _alert("01A", "grace", now, level="high"),  # 7 x 1 x 1 x 1
        _alert("01B", "grace", now - timedelta(days=7), level="critical"),  # 15 x 1 x 1 x 0.5
        _alert("01C", "grace", now, level="critical", status="false_positive"),  # 0
        _alert("01D", "bob", now, level="low", status="resolved", verdict="true_positive"),  # 1 x 1.5
    ]
    risks = user_risks(alerts, now)
    assert risks["grace"].score == 14.5 and risks["bob"].score == 1.5
    weights = {c.alert.id: round(c.weight, 2) for c in risks["grace"].contributions}
    assert weights == {"01A": 7.0, "01B": 7.5, "01C": 0.0}
