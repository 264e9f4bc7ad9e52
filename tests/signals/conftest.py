"""Signals fixtures: stages on the test Redis (or in memory) with a collecting alert sink."""

from __future__ import annotations

import pytest

from gateway.signals import SignalsConfig, build_signals
from tests.conftest import MutableClock
from tests.signals.factories import T0, CollectingSink


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


@pytest.fixture
def signals_clock() -> MutableClock:
    return MutableClock(T0)


@pytest.fixture
async def make_stage(sink, signals_clock):
    """``await make_stage("redis", url, **config)`` -> a started SignalsStage, stopped at teardown."""
    stages = []

    async def factory(backend: str = "memory", redis_url: str | None = None, *, alerts=sink, clock=signals_clock, **config):
        stage = build_signals(SignalsConfig(backend=backend, **config), redis_url=redis_url, alerts=alerts, clock=clock)
        await stage.start()
        stages.append(stage)
        return stage

    yield factory
    for stage in stages:
        await stage.stop()
