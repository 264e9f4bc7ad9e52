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

pytestmark = pytest.mark.slow

USERS = ("alice", "bob")
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
