"""Shared fixtures: the real demo CRM and the real gateway, on real sockets (pytest-aiohttp)."""

from __future__ import annotations

import functools
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.ruleset import RuleSet, load_ruleset, revision_of
from gateway.rulestore import RuleStore

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
PARIS = ZoneInfo("Europe/Paris")


class MutableClock:
    """The gateway's clock in tests: set it to any instant, timezone-aware."""

    def __init__(self, now: datetime):
        self.now = now

    def set(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> MutableClock:
    # Tuesday 3 March 2026, 10:00 in Paris: office hours for the shipped rules.
    return MutableClock(datetime(2026, 3, 3, 10, 0, tzinfo=PARIS))


@functools.cache
def _loaded(root: Path, revision: str) -> RuleSet:
    ruleset, errors = load_ruleset(root)
    assert ruleset is not None, errors
    assert ruleset.revision == revision, "the rules changed while they were read"
    return ruleset


def open_rules(root: Path) -> RuleStore:
    """``RuleStore.open(root)`` for tests that serve rules rather than test loading them: a RuleSet
    is immutable, so one loaded copy per folder content serves every test (loading costs ~20 ms;
    thousands of tests start a gateway). A folder with a ``.revision`` marker is opened for real."""
    root = Path(root)
    if (root / ".revision").exists():
        store, errors = RuleStore.open(root)
        assert store is not None, errors
        return store
    return RuleStore(root, _loaded(root.resolve(), revision_of(root)))


@pytest.fixture
def rules_copy(tmp_path) -> Path:
    """A private copy of the shipped rules, for tests that edit rule files."""
    dest = tmp_path / "rules"
    shutil.copytree(RULES, dest)
    return dest


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server for the run: ./run test starts one (CRMGW_TEST_REDIS_URL); plain pytest
    starts a private one here. Yields ``(url, port)``. Never a stand-in."""
    import os
    import subprocess
    import tempfile
    import time

    url = os.environ.get("CRMGW_TEST_REDIS_URL")
    # Under pytest-xdist (./run test --fast) each worker starts its own: tests FLUSHALL.
    if url and not os.environ.get("PYTEST_XDIST_WORKER"):
        yield url, int(os.environ.get("CRMGW_TEST_REDIS_PORT") or url.rsplit(":", 1)[1].split("/")[0])
        return
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: run the tests with ./run test, which installs it")
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="crmgw-redis-")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis as redis_sync

    client = redis_sync.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis_sync.ConnectionError:
            time.sleep(0.05)
    client.close()
    try:
        yield f"redis://127.0.0.1:{port}/0", port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def redis_url(redis_server):
    """The test Redis, flushed before each test so tests never see each other's counters."""
    import redis.asyncio as aioredis

    url, _ = redis_server
    client = aioredis.from_url(url)
    await client.flushdb()
    await client.aclose()
    return url


@pytest.fixture
def redis_port(redis_server) -> int:
    return redis_server[1]
