"""Real Redis Cluster and Sentinel processes for the tests: loopback ports, a private folder, killed
at teardown whatever happened (``Processes.stop`` runs in the fixtures' ``finally``).

    RedisCluster   ``redis-server --cluster-enabled yes`` x 6, joined by ``redis-cli --cluster create
                   --cluster-replicas 1``: 3 masters with one replica each, cluster-node-timeout 1000 ms
    SentinelGroup  a primary, its replica and 3 ``redis-server --sentinel`` processes (quorum 2,
                   down-after-milliseconds 1000)

Nothing here is a stand-in: the gateway talks to these servers through redis-py's own cluster and
sentinel clients, as in production.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

NODE_TIMEOUT_MS = 1000
# a replica's first full sync starts at once (the default waits 5 s for more replicas to join)
QUICK_SYNC = ("--repl-diskless-sync-delay", "0")
DOWN_AFTER_MS = 1000
MASTER_NAME = "crmgw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check, *, timeout: float, what: str, every: float = 0.05):
    """Poll ``check()`` until it returns something truthy (exceptions count as "not yet")."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last!r})")


def synced(port: int) -> bool:
    """A master, or a replica whose link to its master is up (its first full sync done)."""
    client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
    try:
        info = client.info("replication")
        return info["role"] == "master" or info.get("master_link_status") == "up"
    finally:
        client.close()


class Processes:
    """The servers one fixture started, by port; ``stop`` kills whatever is still running."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.exe = shutil.which("redis-server")
        assert self.exe, "redis-server is not installed: ./run test installs Debian's package"

    def start(self, port: int, *args: str, config: str | None = None) -> None:
        folder = self.workdir / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        argv: list[str] = [self.exe or "redis-server"]
        if config is not None:  # sentinels rewrite their own config file: it must be theirs
            (folder / "node.conf").write_text(config)
            argv.append(str(folder / "node.conf"))
        argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--logfile", "redis.log", *args]
        self.procs[port] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port, socket_timeout=1)
        try:
            wait_until(client.ping, timeout=10, what=f"redis-server on port {port}")
        finally:
            client.close()

    def kill(self, port: int) -> None:
        """SIGKILL: what a crashed host looks like (no shutdown, no final save)."""
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait(10)

    def stop(self) -> None:
        for port in list(self.procs):
            self.kill(port)


class RedisCluster(Processes):
    def __init__(self, workdir: Path, masters: int = 3):
        super().__init__(workdir)
        self.ports = [free_port() for _ in range(masters * 2)]

    @property
    def url(self) -> str:
        """The gateway's setting: a few seed nodes are enough, the client discovers the rest."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def create(self) -> None:
        for port in self.ports:
            self.start(
                port,
                *("--cluster-enabled", "yes", "--cluster-port", str(free_port())),
                *("--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
                *("--save", "", "--appendonly", "no", *QUICK_SYNC),
            )
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
            + ["--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )
        for port in self.ports:
            wait_until(lambda p=port: self.healthy(p), timeout=20, what=f"cluster_state:ok on {port}")
            wait_until(lambda p=port: synced(p), timeout=20, what=f"replication in sync on {port}")

    def healthy(self, port: int) -> bool:
        """The node says the cluster is ok and every master has a replica attached."""
        client = redis.Redis(port=port, socket_timeout=1)
        try:
            if client.cluster("info")["cluster_state"] != "ok":
                return False
            nodes = client.cluster("nodes")
            replicas = [n for n in nodes.values() if "slave" in n["flags"] and n["connected"]]
            return len(replicas) == len(self.ports) // 2
        finally:
            client.close()

    def master_of(self, key: str) -> int:
        """The port of the master that holds ``key``'s slot now."""
        client = redis.Redis(port=next(iter(self.procs)), socket_timeout=1)
        try:
            slot = client.cluster("keyslot", key)
            for start, end, master, *_ in client.cluster("slots"):
                if start <= slot <= end:
                    return int(master[1])
        finally:
            client.close()
        raise AssertionError(f"no master serves {key}")

    def replica_of(self, master: int) -> int:
        """The port of ``master``'s replica."""
        client = redis.Redis(port=master, socket_timeout=1)
        try:
            info = client.info("replication")
            return int(info["slave0"]["port"])
        finally:
            client.close()


class SentinelGroup(Processes):
    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.primary, self.replica = free_port(), free_port()
        self.sentinels = [free_port() for _ in range(3)]

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.sentinels) + f"/{MASTER_NAME}/0"

    def create(self) -> None:
        # AOF fsync'd on every write, as docker-compose.yml runs Redis: a restarted node keeps its data
        durable = ("--save", "", "--appendonly", "yes", "--appendfsync", "always", *QUICK_SYNC)
        self.start(self.primary, *durable)
        self.start(self.replica, *durable, "--replicaof", "127.0.0.1", str(self.primary))
        conf = (
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} 5000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        for port in self.sentinels:
            self.start(port, "--sentinel", config=conf)
        wait_until(lambda: synced(self.replica), timeout=20, what="the replica in sync")
        wait_until(self._ready, timeout=20, what="3 sentinels that know the replica")

    def _ready(self) -> bool:
        for port in self.sentinels:
            client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
            try:
                master = client.sentinel_master(MASTER_NAME)
                if int(master["num-other-sentinels"]) < 2 or int(master["num-slaves"]) < 1:
                    return False
            finally:
                client.close()
        return True

    def current_primary(self) -> int:
        client = redis.Redis(port=self.sentinels[0], socket_timeout=1)
        try:
            _, port = client.sentinel_get_master_addr_by_name(MASTER_NAME)
            return int(port)
        finally:
            client.close()
