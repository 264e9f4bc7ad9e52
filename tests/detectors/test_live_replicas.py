"""Issue 15, point 3: two gateway replicas behind a round-robin client score a user from the state
they share in one real Redis, and that score is the offline replay's score of the same audit lines.

Two real gateway apps (each with its own audit log, the scorer built by the app's lifecycle from
``scoring:`` and ``redis_url``) in front of one real democrm; every other request goes to the other
replica, as a round-robin load balancer sends them.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from detectors import store
from detectors.features import FEATURE_NAMES, compute
from detectors.replay import Aggregator, read_audit_logs
from gateway.app import GATEWAY, create_app
from tests.conftest import RULES, open_rules
from tests.integration.conftest import CRM_TOKEN, auth, gateway_settings

NEW_COUNTRY = FEATURE_NAMES.index("new_country_requests")

pytestmark = pytest.mark.slow

USERS = ("alice", "bob")
TRIP_NET, NOBODYS_NET = "203.0.113.0/24", "192.0.2.0/24"
PATHS = ("/api/customers?page_size=5", "/api/customers/1", "/api/customers/2", "/api/customers/3", "/api/admin/users")


@pytest.fixture
async def replicas(aiohttp_server, aiohttp_client, tmp_path, clock, model_dir, redis_url):
    from democrm.app import create_app as create_crm

    crm = await aiohttp_server(create_crm(service_token=CRM_TOKEN))
    clients = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        settings = gateway_settings(
            str(crm.make_url("")).rstrip("/"),
            tmp_path,
            RULES,
            redis_url=redis_url,
            audit={"path": str(tmp_path / name / "audit.log")},
            scoring={"model_dir": str(model_dir), "batch_interval": 3600, "watch_interval": 0},
            geo={"overrides": {TRIP_NET: "NZ", NOBODYS_NET: "UY"}},  # countries the model never saw
        )
        clients.append(await aiohttp_client(create_app(settings, open_rules(RULES), clock=clock)))
    return clients


async def round_robin(clients, clock, n=40):
    for i in range(n):
        clock.set(clock.now + timedelta(seconds=17))  # distinct times: the audit lines' order is the replay's
        user, path = USERS[i % 3 % 2], PATHS[i % len(PATHS)]
        resp = await clients[i % 2].get(path, headers=auth(user))
        await resp.read()


def offline(audit_files, loaded: store.LoadedModel, user: str):
    """The training replay of these audit lines (from the model's history, as the live path starts)."""
    agg = Aggregator()
    agg.load_state(loaded.history)
    for record in read_audit_logs(audit_files):
        agg.add(record)
    x = np.array(compute(agg.windows[user], agg.history[user], agg.exported_by_day.get(user)))
    return x, float(loaded.model.score(x.reshape(1, -1), [agg.windows[user].role], [user])[0])


async def test_two_replicas_score_a_user_as_the_offline_replay_of_their_audit_lines(replicas, clock, tmp_path):
    await round_robin(replicas, clock)
    scorers = [c.app[GATEWAY].scoring for c in replicas]
    for scorer in scorers:
        assert scorer.health()["live_state"] == "redis"
        await scorer.drain()
    both = [tmp_path / "a" / "audit.log", tmp_path / "b" / "audit.log"]
    loaded = scorers[0].loaded
    for user in USERS:
        expected_x, expected = offline(both, loaded, user)
        for scorer in scorers:
            assert await scorer.live_score(user) == pytest.approx(expected, abs=1e-9)
            got = np.array(scorer.views[user].features())
            assert np.allclose(got, expected_x), [n for n, a, b in zip(FEATURE_NAMES, got, expected_x) if a != b]


async def test_one_replicas_share_is_not_the_users_day(replicas, clock, tmp_path):
    """What the test above rules out: each replica saw only part of the user's requests."""
    await round_robin(replicas, clock)
    loaded = replicas[0].app[GATEWAY].scoring.loaded
    share, _ = offline([tmp_path / "a" / "audit.log"], loaded, "alice")
    whole, _ = offline([tmp_path / "a" / "audit.log", tmp_path / "b" / "audit.log"], loaded, "alice")
    requests = FEATURE_NAMES.index("requests")
    assert share[requests] < whole[requests]


async def test_peers_one_replica_learned_count_on_the_other_as_offline(replicas, clock, tmp_path):
    """carol and dave work from New Zealand through replica a; the next day alice goes there and
    bob works from a country nobody uses, through replica b. Offline, carol and dave are alice's
    peers there (a colleague's destination is no signal) and bob's country is new: replica b,
    which never served carol or dave, must see the same (the peers are shared in Redis)."""
    await round_robin(replicas, clock)  # alice's and bob's first day: a history to be new against
    for user in ("carol", "dave"):
        for path in PATHS[:3]:
            clock.set(clock.now + timedelta(seconds=17))
            await (await replicas[0].get(path, headers=auth(user, ip="203.0.113.9"))).read()
    scorers = [c.app[GATEWAY].scoring for c in replicas]
    for scorer in scorers:
        await scorer.drain()
    clock.set(clock.now + timedelta(days=1))
    for user, ip in (("alice", "203.0.113.10"), ("bob", "192.0.2.10")):
        for path in PATHS[:3]:
            clock.set(clock.now + timedelta(seconds=17))
            await (await replicas[1].get(path, headers=auth(user, ip=ip))).read()
    for scorer in scorers:
        await scorer.drain()
    both = [tmp_path / "a" / "audit.log", tmp_path / "b" / "audit.log"]
    loaded = scorers[0].loaded
    for user, unusual in (("alice", False), ("bob", True)):
        expected_x, expected = offline(both, loaded, user)
        assert (expected_x[NEW_COUNTRY] > 0) == unusual
        for scorer in scorers:
            assert await scorer.live_score(user) == pytest.approx(expected, abs=1e-9)
            got = np.array(scorer.views[user].features())
            assert np.allclose(got, expected_x), [n for n, a, b in zip(FEATURE_NAMES, got, expected_x) if a != b]
