"""Fixtures of the Redis Cluster and Sentinel tests: the real processes (tests/cluster/servers.py),
started once per test session (the failover tests start their own, since they kill a node) and
killed at teardown even when a test failed; the cluster is flushed before each test."""

from __future__ import annotations

import pytest

from gateway.redisconn import connect_redis
from tests.cluster.servers import RedisCluster, SentinelGroup
from tests.signals.conftest import anomaly_rules as anomaly_rules
from tests.signals.conftest import crm as crm
from tests.signals.conftest import gateway_with_signals as gateway_with_signals
from tests.signals.conftest import make_stage as make_stage
from tests.signals.conftest import signals_clock as signals_clock
from tests.signals.conftest import sink as sink


def started(kind: type[RedisCluster] | type[SentinelGroup], workdir):
    servers = kind(workdir)
    try:
        servers.create()
    except BaseException:
        servers.stop()
        raise
    return servers


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """3 masters + 3 replicas, shared by the tests that do not kill a node."""
    servers = started(RedisCluster, tmp_path_factory.mktemp("cluster"))
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
async def cluster_url(redis_cluster) -> str:
    """The shared cluster's URL (``redis+cluster://...``), every master flushed first."""
    client = connect_redis(redis_cluster.url)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    return redis_cluster.url


@pytest.fixture
def own_cluster(tmp_path):
    """A cluster of the test's own (it kills a master)."""
    servers = started(RedisCluster, tmp_path / "cluster")
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def sentinels(tmp_path):
    """A primary, a replica and 3 sentinels of the test's own (it kills the primary)."""
    servers = started(SentinelGroup, tmp_path / "sentinel")
    try:
        yield servers
    finally:
        servers.stop()
