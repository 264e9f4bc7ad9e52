"""``python -m bench counting`` (bench/counting.py), run as bench/README.md documents it: it counts
through the real signals stage and a private redis-server. Commands per record are deterministic;
the CPU figures are only checked to be numbers (no timed asserts)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_bench_counting_reports_cpu_and_commands_per_record(tmp_path):
    out = tmp_path / "counting.json"
    argv = [sys.executable, "-m", "bench", "counting", "--events", "64", "--batches", "1,8", "--json", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    single, batched = json.loads(out.read_text())
    for row in (single, batched):
        assert math.isfinite(row["worker_us"]) and math.isfinite(row["redis_us"])
    assert single["script_calls"] == 1.0 and batched["script_calls"] == 0.125  # one call per run of 8
    assert batched["commands"] < single["commands"] / 4  # a run adds its counters and reads its windows once
    assert "worker_us" in done.stdout
