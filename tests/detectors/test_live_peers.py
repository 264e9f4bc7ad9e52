"""Live = training for the peer features (new_country_requests / new_country_off_hours).

A country new to a user counts only if fewer than two other users worked from it on an earlier day
(detectors.peers). Offline, the replay knows every user; live, a user's view replays one user, so
the replica must give it the model's peers and the peers every replica learns live (Redis).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import redis.asyncio as aioredis

from detectors import store
from detectors.features import FEATURE_NAMES, compute
from detectors.peers import Peers
from detectors.replay import Aggregator
from gateway.scoring import ScoringConfig, build_scorer
from gateway.scoring.userview import UserView
from tests.detectors.conftest import CollectingAlerts, at, record

NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)
NEW_COUNTRY = FEATURE_NAMES.index("new_country_requests")
UNUSED = ("NZ", "IS", "PE", "KE", "UY")  # countries the simulated company never works from


def test_only_peers_of_earlier_days_count():
    peers = Peers()
    peers.note("DE", "bob", "2026-03-03")
    peers.note("DE", "carol", "2026-03-04")
    assert peers.rare("DE", "alice", "2026-03-04")  # carol's day is alice's day: not yet a peer
    assert not peers.rare("DE", "alice", "2026-03-05")
    assert peers.rare("DE", "bob", "2026-03-05")  # one's own trips are not peers
    assert not peers.note("DE", "bob", "2026-03-06") and peers.first["DE"]["bob"] == "2026-03-03"
    old = Peers()  # a model saved before days were kept: its peers count on every day
    old.load({"DE": ["bob", "carol"], "FR": {"bob": "2026-03-01"}})
    assert not old.rare("DE", "alice", "2026-01-01")
    assert old.settled() == set()
    peers.note("DE", "dave", "2026-03-04")
    assert peers.settled() == {"DE"}


def test_the_offline_replay_counts_peers_whatever_the_order_days_close_in():
    """bob's day 3 in Germany is still open (he has no record of day 4 yet) when alice goes
    there on day 4: it counts all the same, as it will live, where replicas learn at their pace."""
    agg = Aggregator()
    for user in ("alice", "bob", "carol"):
        agg.add(record(user, at(2, 9)))
    agg.add(record("bob", at(3, 9), country="DE"))
    agg.add(record("carol", at(3, 9), country="DE"))
    agg.add(record("alice", at(3, 10)))
    agg.add(record("alice", at(4, 8), country="DE"))
    assert "bob" in agg.windows and agg.windows["bob"].day == "2026-03-03"
    assert agg.windows["alice"].new_countries == {"DE"}
    assert agg.windows["alice"].new_country_requests == 0


def offline(records: list[dict], loaded: store.LoadedModel, user: str) -> np.ndarray:
    """The training replay of these records, from the model's history as the live path starts."""
    agg = Aggregator()
    agg.load_state(loaded.history)
    for r in sorted(records, key=lambda r: r["time"]):
        agg.add(r)
    return np.array(compute(agg.windows[user], agg.history[user], agg.exported_by_day.get(user)))


async def replica(redis_url, model_dir):
    client = aioredis.from_url(redis_url)
    config = ScoringConfig(model_dir=str(model_dir), batch_interval=3600, watch_interval=0)
    scorer = build_scorer(config, alerts=CollectingAlerts(), clock=lambda: NOW, redis=client)
    await scorer.load()
    return scorer, client


async def serve(scorer, records):
    for r in records:
        scorer.submit(None, r, None)
    await scorer.drain()


def home_day(user: str, day: int) -> list[dict]:
    return [record(user, at(day, 9, i * 5), returned=3, ids=range(i, i + 3)) for i in range(6)]


def trip_day(user: str, day: int, country: str) -> list[dict]:
    return [record(user, at(day, 10, i * 5), country=country, ip="84.1.2.3") for i in range(4)]


@pytest.mark.slow  # a model load (skops) and replays
async def test_a_country_only_the_models_peers_use_is_not_new_live(redis_url, model_dir):
    scorer, client = await replica(redis_url, model_dir)
    loaded = scorer.loaded
    peers = loaded.history["country_users"]
    country = max((c for c in peers if c != "FR"), key=lambda c: len(peers[c]))
    assert len(peers[country]) >= 2 and "dave" not in peers[country]
    records = home_day("dave", 2) + trip_day("dave", 3, country)
    await serve(scorer, records)

    expected = offline(records, loaded, "dave")
    got = np.array(scorer.views["dave"].features())
    assert expected[NEW_COUNTRY] == 0
    assert np.allclose(got, expected), [n for n, a, b in zip(FEATURE_NAMES, got, expected) if a != b]
    # what that rules out: a view that knows only dave's own history counts the country as unused
    alone = UserView("dave", -1, {})
    alone.replay([b"%016d:" % i + scorer_json(r) for i, r in enumerate(records)])
    assert alone.features()[NEW_COUNTRY] > 0
    await client.aclose()


def scorer_json(r: dict) -> bytes:
    from gateway.scoring.userview import compact

    return compact(r)


@pytest.mark.slow
async def test_peers_learned_on_one_replica_count_on_the_other_as_offline(redis_url, model_dir):
    a, client_a = await replica(redis_url, model_dir)
    b, client_b = await replica(redis_url, model_dir)
    country = next(c for c in UNUSED if c not in a.loaded.history["country_users"])
    records = {u: home_day(u, 2) for u in ("bob", "carol", "dave", "erin")}
    await serve(a, [r for u in ("bob", "carol") for r in records[u]])
    await serve(b, [r for u in ("dave", "erin") for r in records[u]])
    for u in ("bob", "carol"):  # two colleagues go there on day 3, through replica a
        records[u] += trip_day(u, 3, country)
        await serve(a, trip_day(u, 3, country))
    records["erin"] += trip_day("erin", 3, country)  # the same day: they are not yet peers for her
    records["dave"] += home_day("dave", 3) + trip_day("dave", 4, country)  # the next day: they are
    await serve(b, [r for u in ("erin", "dave") for r in records[u] if r["time"] >= "2026-03-03"])

    everyone = [r for rs in records.values() for r in rs]
    for user, unusual in (("erin", True), ("dave", False)):
        expected = offline(everyone, b.loaded, user)
        assert (expected[NEW_COUNTRY] > 0) == unusual
        for scorer in (a, b):
            await scorer.live_score(user)
            got = np.array(scorer.views[user].features())
            assert np.allclose(got, expected), [n for n, x, y in zip(FEATURE_NAMES, got, expected) if x != y]
    shared = await client_a.hgetall(f"crmgw:det:{{c:{country}}}:peers")
    assert shared == {b"bob": b"2026-03-03", b"carol": b"2026-03-03", b"erin": b"2026-03-03", b"dave": b"2026-03-04"}
    assert not await client_a.keys("crmgw:det:{c:FR}:*")  # a country the model knows as common: nothing shared
    await client_a.aclose()
    await client_b.aclose()
