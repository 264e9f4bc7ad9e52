"""The capacity benchmark as bench/README.md gives it, on a tiny day of traffic (no timed asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.capacity import SCALES, day_of_traffic

pytestmark = pytest.mark.slow  # the benchmark's own code (tests/test_markers.py)


def test_a_simulated_day_is_in_time_order_with_every_user() -> None:
    records = day_of_traffic(30, 10, seed=1)
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)
    assert {r["user"] for r in records} == {f"u{u:06d}" for u in range(30)}
    assert {r["operation"] for r in records} >= {"customers.view", "customers.list"}


def test_capacity_counts_a_day_on_a_real_redis_and_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "capacity.json"
    assert main(["capacity", "--users", "40", "--requests", "8", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    measured = result["measured"]
    assert measured["counted"] == measured["requests"] > 0 and measured["dropped"] == 0
    assert measured["client_commands_per_request"] >= 1  # at least the counting script per request
    assert measured["commands_inside_scripts_per_request"] > 1
    assert measured["steady_state_bytes_per_user"] > 0 and measured["key_sample"]["crmgw_keys"] > 0
    assert [row["users"] for row in result["table"]] == list(SCALES)
    memory = [row["redis_memory_mib"] for row in result["table"]]
    assert memory == sorted(memory) and memory[0] > 0
    assert "| 100,000 |" in capsys.readouterr().out
