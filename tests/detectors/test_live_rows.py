"""Issue 15, point 6 (live part): the live path writes each closed user-day's feature row once,
whichever replica stored the day, and the row is the offline replay's end-of-day row."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
import pytest
import redis.asyncio as aioredis

from detectors import dataset
from detectors.liverows import read_live_rows
from gateway.scoring import ScoringConfig, build_scorer
from tests.detectors.conftest import CollectingAlerts, at, record

pytestmark = pytest.mark.slow  # two model loads (skops) and a replay

NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)


def traffic() -> list[dict]:
    out = []
    for day in range(2, 7):
        for user, n in (("carol", 6 + day), ("dave", 14 - day)):
            out += [
                record(user, at(day, 9, i * 4 + (user == "dave")), returned=3, ids=range(i, i + 3)) for i in range(n)
            ]
    return sorted(out, key=lambda r: r["time"])


@pytest.fixture
async def clients(redis_url):
    made = [aioredis.from_url(redis_url) for _ in range(2)]
    yield made
    for client in made:
        await client.aclose()


async def test_two_replicas_write_each_closed_day_once_as_the_replay_computes_it(clients, model_dir, tmp_path):
    scorers = []
    for name, client in zip(("a", "b"), clients):
        config = ScoringConfig(model_dir=str(model_dir), watch_interval=0, rows_dir=name)
        scorer = build_scorer(config, alerts=CollectingAlerts(), clock=lambda: NOW, redis=client, base_dir=tmp_path)
        await scorer.load()
        scorers.append(scorer)
    records = traffic()
    for i in range(0, len(records), 5):  # batches alternate between the replicas
        scorer = scorers[i // 5 % 2]
        for r in records[i : i + 5]:
            scorer.submit(None, r, None)
        await scorer.drain()
    files = sorted(tmp_path.glob("*/live-rows-*.jsonl"))
    assert files  # whichever replica stored a day wrote its rows
    live = read_live_rows(files)
    assert sorted(set(live.days)) == ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
    assert len(set(zip(live.users, live.days))) == len(live) == 8  # each user-day once
    assert sum(s.health()["rows"]["written"] for s in scorers) == 8

    (tmp_path / "audit.log").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    replayed, _ = dataset.build([tmp_path / "audit.log"])
    offline = {
        (u, d): replayed.X[i] for i, (u, d) in enumerate(zip(replayed.users, replayed.days)) if replayed.final[i]
    }
    for i, key in enumerate(zip(live.users, live.days)):
        assert np.allclose(live.X[i], offline[key]), key
