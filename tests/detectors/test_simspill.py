"""The simulator spills events to disk per day (bounded memory) and writes the very audit lines
the in-memory sort of the whole run gives."""

from __future__ import annotations

import orjson
import pytest

from detectors.simulate import Simulation, simulate, to_record


@pytest.mark.slow  # about a second under load
def test_spilled_days_are_the_lines_of_the_whole_run_sorted_in_memory(tmp_path):
    summary = simulate(12, 6, 3, tmp_path / "spilled", incidents=1)

    sim = Simulation(12, 6, 3, incidents=1)  # the same seed, every event kept in memory
    events, labels = sim.run()
    expected: dict[str, list[bytes]] = {}
    for ev in events:
        line = orjson.dumps(to_record(ev, sim.rng))
        expected.setdefault(orjson.loads(line)["time"][:10], []).append(line)

    written = sorted(p.name for p in (tmp_path / "spilled").iterdir())
    assert written == sorted([f"audit-{d}.log" for d in expected] + ["labels.jsonl"])  # no spill left behind
    for day, lines in expected.items():
        assert (tmp_path / "spilled" / f"audit-{day}.log").read_bytes() == b"\n".join(lines) + b"\n"
    assert summary["events"] == len(events) and summary["files"] == len(expected)
    assert (tmp_path / "spilled" / "labels.jsonl").read_bytes() == b"".join(orjson.dumps(x) + b"\n" for x in labels)
