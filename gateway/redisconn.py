"""One way to get a Redis client from a URL, for every part of the gateway that uses Redis.

    redis://host:6379/0, rediss://...          a single server (redis-py's from_url)
    redis+sentinel://h1:26379,h2:26379/mymaster/0   Redis Sentinel: the current master of "mymaster"
    redis+cluster://h1:7000,h2:7001             Redis Cluster (seed nodes; the others are discovered)

In a cluster every key one script touches shares a hash tag: ``crmgw:{u:<user>}:`` (counters),
``crmgw:{alerts}:``, ``crmgw:{approvals}:``, ``crmgw:{access}:``; the enforcement hash and the epoch
are single keys. tests/cluster/ runs every part on a real cluster and a real Sentinel group, with a
node killed; README.md "Redis Cluster and Sentinel" states what was measured.

Clients are created with short socket timeouts and health checks so a dead Redis is noticed in
about a second instead of hanging requests (the caller decides what "degraded" means).

    connect_redis        a new client; whoever calls it closes it (the CLIs, tests)
    RedisConnections     the gateway process's: one client and one health tracker
                         (gateway.redishealth.RedisHealth) per URL, shared by the signals stage and
                         the alert, approval and access-request stores, closed once by the app's
                         lifecycle after every part using them has stopped (Services.redis)
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff

from gateway.clock import Clock, utc_now
from gateway.redishealth import RedisHealth

log = logging.getLogger("crmgw.redis")

TIMEOUTS = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0, "health_check_interval": 10}
# redis-py's cluster client retries a failed command 10 times with backoff and topology refreshes
# (3 to 5 s measured against a killed master): meanwhile the gateway sees no failure and serves
# fail-closed operations. Three quick retries (about a second, topology refreshes included) follow a
# MOVED after a failover that is over and report a dead master as fast as a dead single server.
CLUSTER_RETRY = Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.25), retries=3)

# What connect_redis returns: a server's (or Sentinel's current master's) client, or a cluster's.
RedisClient = aioredis.Redis | RedisCluster


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    hosts: list[tuple[str, int]] = []
    for part in netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = part.rpartition(":") if part.count(":") == 1 else (part, "", "")
        hosts.append((host or part, int(port) if port else default_port))
    return hosts


def connect_redis(url: str, **overrides: Any) -> RedisClient:
    """A redis.asyncio client (or cluster client) for ``url``; raises ValueError for bad URLs."""
    options = {**TIMEOUTS, **overrides}
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss", "unix"):
        return aioredis.from_url(url, **options)
    if parts.scheme == "redis+sentinel":
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ValueError("redis+sentinel URL needs the master name: redis+sentinel://h:26379/mymaster/0")
        service, db = path[0], int(path[1]) if len(path) > 1 else 0
        sentinel = Sentinel(
            _hosts(parts.netloc, 26379),
            sentinel_kwargs={"socket_timeout": options["socket_timeout"]},
            password=parts.password,
            **{k: v for k, v in options.items() if k != "health_check_interval"},
        )
        master: aioredis.Redis = sentinel.master_for(service, db=db)  # redis_class=Redis, the default
        return master
    if parts.scheme == "redis+cluster":
        nodes = [ClusterNode(h, p) for h, p in _hosts(parts.netloc, 6379)]
        return RedisCluster(
            startup_nodes=nodes,
            password=parts.password,
            socket_timeout=options["socket_timeout"],
            socket_connect_timeout=options["socket_connect_timeout"],
            client_name=options.get("client_name"),
            retry=CLUSTER_RETRY,
        )
    raise ValueError(
        f"unsupported Redis URL scheme {parts.scheme!r} (redis, rediss, unix, redis+sentinel, redis+cluster)"
    )


async def locate_channel(client: RedisClient, channel: str) -> None:
    """Before subscribing to ``channel``: make a cluster client learn which node serves the
    channel's slot now. redis-py's ClusterPubSub subscribes on the node its slot map names, and only
    a failed command refreshes that map: after a failover a subscriber would keep dialling the dead
    master (measured: tests/cluster/test_failover.py). A read keyed by the channel name fails over
    like any command and refreshes the map. A single server or Sentinel needs nothing."""
    if isinstance(client, RedisCluster):
        await client.exists(channel)


def redacted(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


class RedisConnections:
    """One client and one health tracker per Redis URL for a whole gateway process.

    Parts given a client by ``client(url)`` never close it: ``close()`` does, once per client, when
    the app shuts down. Clients are named ``client_name`` (``CLIENT SETNAME``), so ``CLIENT LIST``
    on the server shows which connections are the gateway's.
    """

    def __init__(self, *, clock: Clock | None = None, client_name: str | None = "crmgw"):
        self.clock: Clock = clock or utc_now
        self.client_name = client_name
        self.clients: dict[str, RedisClient] = {}
        self.trackers: dict[str, RedisHealth] = {}

    def client(self, url: str) -> RedisClient:
        """The process's client for ``url`` (made on first use); raises ValueError for bad URLs."""
        client = self.clients.get(url)
        if client is None:
            options = {"client_name": self.client_name} if self.client_name else {}
            client = self.clients[url] = connect_redis(url, **options)
        return client

    def health(self, url: str) -> RedisHealth:
        """The process's tracker for ``url``: degraded (unreachable) until a write succeeds."""
        tracker = self.trackers.get(url)
        if tracker is None:
            tracker = self.trackers[url] = RedisHealth(clock=self.clock, name=f"Redis {redacted(url)}")
        return tracker

    async def close(self) -> None:
        """Close every client once (a later ``client(url)`` makes a new one)."""
        clients, self.clients = list(self.clients.items()), {}
        for url, client in clients:
            try:
                await client.aclose()
            except Exception:  # a client whose connections already broke: nothing left to release
                log.exception("closing the Redis client for %s failed", redacted(url))
