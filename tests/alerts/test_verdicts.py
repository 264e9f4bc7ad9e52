"""The verdicts file: the contract with the detector's next training run."""

from __future__ import annotations

import json

from gateway.alerts.verdicts import write_verdicts
from tests.alerts.conftest import raise_kwargs


async def test_write_verdicts_from_the_journal(make_store, tmp_path):
    store = await make_store(None)
    fp = await store.raise_alert(**raise_kwargs(evidence={"day": "2026-03-02", "rows": 9000}))
    real = await store.raise_alert(**raise_kwargs(user="bob", type="mass-delete"))
    await store.raise_alert(**raise_kwargs(user="carol"))
    await store.transition(fp, actor="heidi", status="false_positive", note="month-end export")
    await store.transition(real, actor="heidi", status="resolved")
    out = tmp_path / "out" / "verdicts.jsonl"
    assert write_verdicts(store.journal.path, out) == 2
    rows = {r["alert_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows[fp]["verdict"] == "false_positive" and rows[fp]["day"] == "2026-03-02"
    assert rows[real]["verdict"] == "confirmed" and rows[real]["type"] == "mass-delete"
    alert = await store.get(real)
    assert rows[real]["day"] == alert.time[:10] and rows[real]["time"] == alert.history[-1].time
    assert {"user", "type", "window", "day", "verdict", "time", "evidence"} <= set(rows[fp])


async def test_a_corrected_verdict_exports_the_latest_one(make_store, tmp_path):
    store = await make_store(None)
    alert_id = await store.raise_alert(**raise_kwargs())
    await store.transition(alert_id, actor="heidi", status="false_positive")
    await store.transition(alert_id, actor="grace", status="resolved", note="it was real after all")
    write_verdicts(store.journal.path, tmp_path / "v.jsonl")
    [row] = map(json.loads, (tmp_path / "v.jsonl").read_text().splitlines())
    assert row["verdict"] == "confirmed"


async def test_store_exports_verdicts_from_redis_for_every_instance(make_store, redis_url, tmp_path):
    a = await make_store(redis_url, journal=tmp_path / "a.jsonl", writer="a")
    b = await make_store(redis_url, journal=tmp_path / "b.jsonl", writer="b")
    alert_id = await a.raise_alert(**raise_kwargs())
    await b.transition(alert_id, actor="heidi", status="false_positive")
    assert [v["alert_id"] for v in await a.export_verdicts()] == [alert_id]
