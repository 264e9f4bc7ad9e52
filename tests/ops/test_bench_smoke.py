"""A short smoke of the benchmark (CI never runs the timed benchmark itself). No timed asserts."""

from __future__ import annotations

import math

import pytest

from bench import load, servers
from bench.__main__ import main
from bench.micro import run_micro
from bench.report import ratios, render


@pytest.mark.slow
def test_micro_benchmarks_produce_numbers():
    result = run_micro(0.2)
    for key in ("decide_us", "prepare_us", "filter_50_us", "audit_record_us"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert result["records_returned"] == 50 and result["fields_masked"] == 3  # support: masks on


def test_ratios_and_targets_are_computed_from_load_results():
    rows = [
        {
            "config": c,
            "endpoint": "record",
            "connections": n,
            "rps": rps,
            "p50_ms": p50,
            "p99_ms": 1.0,
            "errors": 0,
            "valid": True,
        }
        for c, n, rps, p50 in [
            ("a", 1, 1000, 0.1),
            ("c", 1, 500, 0.6),
            ("a", 8, 4000, 1),
            ("b", 8, 2000, 1),
            ("c", 8, 800, 2),
            ("d", 8, 1000, 2),
        ]
    ]
    r = ratios(rows)
    assert r["c/d record"] == 0.8 and r["c/b record"] == 0.4 and r["c/a record"] == 0.2
    assert r["added_p50_ms record"] == 0.5
    table = render({"micro": {"decide_us": 10.0}, "load": rows, "ratios": r, "info": {}})
    assert "c/d record c=8" in table and "met" in table


@pytest.mark.slow
def test_quick_benchmark_runs_end_to_end(tmp_path):
    missing = [n for n, found in (("wrk", load.find_wrk()), ("nginx", servers.find_nginx())) if not found]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: only the micro-benchmark smoke ran")
    out = tmp_path / "bench.json"
    assert main(["--quick", "--connections", "2", "--duration", "1", "--json", str(out)]) == 0
    import json

    result = json.loads(out.read_text())
    configs = {(r["config"], r["endpoint"]) for r in result["load"] if r["valid"] and r["rps"] > 0}
    assert configs == {(c, e) for c in "abcd" for e in ("record", "list")}
    assert "c/d list" in result["ratios"]
    for server in ("gateway", "aiohttp", "nginx", "redis"):  # CPU per request, from /proc
        assert result["ratios"][f"cpu_us {server} record"] > 0, server
    assert result["info"]["audit_lines"] > 0
