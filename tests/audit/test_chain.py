"""The audit log's hash chain: written under the flock by several processes, checked by verify.

Every tampering case runs on a log written by two real processes sharing one file and rotating it
(what `crmgw serve --workers 2` does), then edited the way an intruder would: a line removed,
a line edited, two lines swapped. `crmgw audit verify` must fail and name the line.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.audit.chain import GENESIS, line_hash, verify
from gateway.audit.log import AuditLog
from gateway.cli import main
from tests.conftest import REPO


def _writer(path: str, name: str, count: int, max_bytes: int, start) -> None:
    start.wait()
    log = AuditLog(Path(path), max_bytes=max_bytes, backups=50)
    for i in range(count):
        log.write({"time": "2026-03-02T10:00:00.000+00:00", "writer": name, "i": i, "pad": "x" * (i % 50)})
        if i % 10 == 9:
            time.sleep(0.002)  # let the other process in: the lines interleave as under real traffic
    log.close()


def two_process_log(folder: Path, count: int = 150, max_bytes: int = 4096) -> list[Path]:
    """Two processes append `count` lines each to one file; the files oldest first."""
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(folder / "audit.log"), n, count, max_bytes, start)) for n in "ab"]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    backups = sorted(folder.glob("audit.log.*[0-9]"), key=lambda f: int(f.suffix[1:]), reverse=True)
    return [*backups, folder / "audit.log"]


def lines_of(files: list[Path]) -> list[tuple[Path, int, bytes]]:
    return [(f, n, raw) for f in files for n, raw in enumerate(f.read_bytes().splitlines(), 1)]


def verify_cli(files: list[Path], capsys) -> tuple[int, str]:
    code = main(["audit", "verify", *map(str, files)])
    return code, capsys.readouterr().out


@pytest.fixture
def shared_log(tmp_path) -> list[Path]:
    return two_process_log(tmp_path)


@pytest.mark.slow
def test_two_processes_write_one_unbroken_chain_across_rotations(shared_log, capsys):
    assert len(shared_log) >= 4  # rotated several times
    rows = lines_of(shared_log)
    records = [json.loads(raw) for _, _, raw in rows]
    assert sorted((r["writer"], r["i"]) for r in records) == sorted((w, i) for w in "ab" for i in range(150))
    assert [r["chain"]["seq"] for r in records] == list(range(1, 301))
    assert records[0]["chain"]["prev"] == GENESIS
    # every line names the one physically before it, also from one file to the next
    for (_, _, before), record in zip(rows, records[1:]):
        assert record["chain"]["prev"] == line_hash(before)
    switches = sum(1 for x, y in itertools.pairwise(records) if x["writer"] != y["writer"])
    assert switches >= 5  # the two really interleaved
    code, out = verify_cli(shared_log, capsys)
    assert code == 0, out
    assert (
        out.splitlines()[-1]
        == f"ok: 300 lines in {len(shared_log)} file(s); head seq 300 sha256 {line_hash(rows[-1][2])}"
    )


@pytest.mark.slow
def test_one_path_means_the_file_and_its_backups_oldest_first(shared_log, capsys):
    code, out = verify_cli([shared_log[-1]], capsys)
    assert code == 0, out
    assert f"300 lines in {len(shared_log)} file(s)" in out


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


@pytest.mark.slow
def test_a_removed_line_is_named(shared_log, capsys):
    target = shared_log[1]
    lines = target.read_bytes().splitlines()
    del lines[2]  # line 3 of the second-oldest file
    rewrite(target, lines)
    code, out = verify_cli(shared_log, capsys)
    assert code == 1
    assert f"{target}:3: 1 line(s) missing before it" in out, out
    assert "FAILED: 1 problem(s)" in out


@pytest.mark.slow
def test_an_edited_line_is_named(shared_log, capsys):
    target = shared_log[2]
    lines = target.read_bytes().splitlines()
    lines[4] = lines[4].replace(b'"writer":"a"', b'"writer":"z"').replace(b'"writer":"b"', b'"writer":"z"')
    rewrite(target, lines)
    code, out = verify_cli(shared_log, capsys)
    assert code == 1
    assert f"{target}:5: edited: its sha256 does not match the prev recorded by the next line, {target}:6" in out, out


@pytest.mark.slow
def test_an_edited_last_line_of_a_file_is_named_across_the_rotation(shared_log, capsys):
    older, newer = shared_log[0], shared_log[1]
    lines = older.read_bytes().splitlines()
    lines[-1] = lines[-1].replace(b'"i":', b'"i":1')
    rewrite(older, lines)
    code, out = verify_cli(shared_log, capsys)
    assert code == 1
    assert f"{older}:{len(lines)}: edited" in out and f"next line, {newer}:1" in out, out


@pytest.mark.slow
def test_two_swapped_lines_are_named(shared_log, capsys):
    target = shared_log[1]
    lines = target.read_bytes().splitlines()
    lines[3], lines[4] = lines[4], lines[3]
    rewrite(target, lines)
    code, out = verify_cli(shared_log, capsys)
    assert code == 1
    assert f"{target}:4: out of order" in out and f"{target}:5: out of order" in out, out
    assert "lines reordered" in out


@pytest.mark.slow
def test_a_file_left_out_of_the_middle_is_a_gap(shared_log, capsys):
    code, out = verify_cli([shared_log[0], *shared_log[2:]], capsys)
    assert code == 1
    assert f"{shared_log[2]}:1:" in out and "missing before it" in out, out


@pytest.mark.slow
def test_a_log_whose_oldest_files_were_rotated_away_still_verifies(shared_log, capsys):
    code, out = verify_cli(shared_log[2:], capsys)
    assert code == 0, out
    assert "not checked" in out  # says that the first link could not be checked


def test_a_torn_line_is_ended_and_chained_then_reported(tmp_path, capsys):
    log = AuditLog(tmp_path / "audit.log")
    log.write({"n": 1})
    log.close()
    with open(tmp_path / "audit.log", "ab") as f:
        f.write(b'{"n": 2, "trunc')  # a write cut short (disk full, crash)
    log = AuditLog(tmp_path / "audit.log")
    log.write({"n": 3})
    log.close()
    lines = (tmp_path / "audit.log").read_bytes().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["chain"]["prev"] == line_hash(lines[1])
    code, out = verify_cli([tmp_path / "audit.log"], capsys)
    assert code == 1 and f"{tmp_path / 'audit.log'}:2: not a JSON object" in out


def test_lines_from_before_the_chain_are_noted_not_failed(tmp_path, capsys):
    (tmp_path / "audit.log").write_bytes(b'{"old":1}\n{"old":2}\n')
    log = AuditLog(tmp_path / "audit.log")
    log.write({"new": 1})
    log.close()
    report = verify([tmp_path / "audit.log"])
    assert report.ok and len(report.notes) == 2 and report.head.seq == 1


def test_append_and_chain_cost_stays_small(tmp_path):
    """Per-line cost of the chained append with two writers alternating on one file (each must read
    the other's last line): printed for the record, bounded loosely so a slow CI box passes."""
    a, b = AuditLog(tmp_path / "audit.log"), AuditLog(tmp_path / "audit.log")
    record = {"time": "2026-03-02T10:00:00.000+00:00", "user": "alice", "pad": "x" * 600}
    n = 2000
    started = time.perf_counter()
    for i in range(n):
        (a if i % 2 else b).write(record)
    per_line = (time.perf_counter() - started) / n
    a.close()
    b.close()
    print(f"chained audit append: {per_line * 1e6:.1f} us/line")
    assert per_line < 0.001
    assert verify([tmp_path / "audit.log"]).ok


@pytest.mark.slow
def test_crmgw_audit_verify_runs_as_a_command(shared_log):
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "verify", *map(str, shared_log)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
