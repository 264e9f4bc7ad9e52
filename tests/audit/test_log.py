"""The audit file: one line per record, rotation by size, failures counted and never silent."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from gateway.audit.chain import verify
from gateway.audit.log import AuditLog


def test_lines_are_json_and_flushed_at_once(tmp_path):
    log = AuditLog(tmp_path / "audit.log")
    log.write({"a": 1})
    log.write({"b": "é"})
    lines = (tmp_path / "audit.log").read_text("utf-8").splitlines()
    records = [json.loads(x) for x in lines]
    assert [{k: v for k, v in r.items() if k != "chain"} for r in records] == [{"a": 1}, {"b": "é"}]
    assert [r["chain"]["seq"] for r in records] == [1, 2]  # the hash chain: gateway.audit.chain
    assert log.written == 2 and log.dropped == 0
    log.close()


def test_rotation_keeps_n_backups(tmp_path):
    log = AuditLog(tmp_path / "audit.log", max_bytes=1024, backups=2)
    for i in range(100):
        log.write({"i": i, "pad": "x" * 50})
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock")  # the rotation lock stays
    assert files == ["audit.log", "audit.log.1", "audit.log.2"]
    newest = [json.loads(x)["i"] for x in (tmp_path / "audit.log").read_text().splitlines()]
    previous = [json.loads(x)["i"] for x in (tmp_path / "audit.log.1").read_text().splitlines()]
    assert newest[-1] == 99 and previous[-1] + 1 == newest[0]
    assert all(p.stat().st_size <= 1024 for p in tmp_path.iterdir() if p.suffix != ".lock")


def test_failed_write_is_counted_kept_on_stderr_and_recovers(tmp_path, capfd):
    log = AuditLog(tmp_path / "d" / "audit.log")
    log.close()
    (tmp_path / "d" / "audit.log").unlink()
    (tmp_path / "d").rmdir()
    (tmp_path / "d").write_text("not a folder")
    assert log.write({"lost": False}) is False
    assert log.dropped == 1 and not log.healthy
    assert '"lost":false' in capfd.readouterr().err
    (tmp_path / "d").unlink()
    assert log.write({"back": True}) is True and log.healthy
    log.close()


def test_two_writers_on_one_file_rotate_once_and_lose_nothing(tmp_path):
    """Two workers of `crmgw serve --workers 2` share one audit file."""
    a = AuditLog(tmp_path / "audit.log", max_bytes=2048, backups=50)
    b = AuditLog(tmp_path / "audit.log", max_bytes=2048, backups=50)
    for i in range(300):
        (a if i % 2 else b).write({"i": i, "pad": "x" * 40})
    a.close()
    b.close()
    seen = []
    for f in tmp_path.glob("audit.log*"):
        if f.suffix != ".lock":
            seen += [json.loads(x)["i"] for x in f.read_text().splitlines()]
            assert f.stat().st_size <= 2048  # append, chain and rotation are one step under the flock
    assert sorted(seen) == list(range(300))


# --- one append per event-loop tick (write_soon: the request path) --------------------------------


async def test_lines_queued_in_one_tick_are_appended_together_in_order(tmp_path):
    log = AuditLog(tmp_path / "audit.log")
    futures = [log.write_soon({"i": i}) for i in range(3)]
    assert (tmp_path / "audit.log").read_bytes() == b""  # nothing yet: the append runs at the tick's end
    assert await asyncio.gather(*futures) == [True, True, True]  # type: ignore[arg-type]
    records = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(r["i"], r["chain"]["seq"]) for r in records] == [(0, 1), (1, 2), (2, 3)]
    assert verify([tmp_path / "audit.log"]).ok and log.written == 3
    log.close()


async def test_a_line_whose_request_was_cancelled_is_still_written(tmp_path):
    log = AuditLog(tmp_path / "audit.log")

    async def request() -> None:
        written = log.write_soon({"cancelled": True})
        assert written is not None
        await written

    task = asyncio.create_task(request())
    await asyncio.sleep(0)  # the request queued its line and waits for the append
    task.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert json.loads((tmp_path / "audit.log").read_text())["cancelled"] is True
    log.close()


async def test_close_writes_the_lines_still_queued(tmp_path):
    log = AuditLog(tmp_path / "audit.log")
    log.write_soon({"last": 1})
    log.close()  # before the tick ended: shutdown
    assert json.loads((tmp_path / "audit.log").read_text())["last"] == 1


async def test_a_batch_that_crosses_the_size_limit_rotates_and_keeps_one_chain(tmp_path):
    log = AuditLog(tmp_path / "audit.log", max_bytes=1024, backups=50)
    assert all(await asyncio.gather(*[log.write_soon({"i": i, "pad": "x" * 50}) for i in range(40)]))  # type: ignore[arg-type]
    log.close()
    files = sorted((p for p in tmp_path.glob("audit.log*") if p.suffix != ".lock"), key=lambda p: p.name, reverse=True)
    assert len(files) > 2 and all(p.stat().st_size <= 1024 for p in files)
    assert verify(files).ok
    assert [json.loads(x)["i"] for f in files for x in f.read_text().splitlines()] == list(range(40))


async def test_a_refused_batch_keeps_every_line_on_stderr(tmp_path, capfd):
    log = AuditLog(tmp_path / "d" / "audit.log")
    log.close()
    (tmp_path / "d" / "audit.log").unlink()
    (tmp_path / "d").rmdir()
    (tmp_path / "d").write_text("not a folder")
    assert await asyncio.gather(log.write_soon({"n": 1}), log.write_soon({"n": 2})) == [False, False]  # type: ignore[arg-type]
    err = capfd.readouterr().err
    assert '"n":1' in err and '"n":2' in err and log.dropped == 2
    (tmp_path / "d").unlink()


async def test_a_batch_failing_with_any_error_still_answers_and_keeps_its_lines(tmp_path, capfd, monkeypatch):
    """Not only OSError: a writer failing otherwise (here a ValueError, as from a file closed under
    it) must resolve every queued future, or the answers waiting on them would hang for ever."""
    log = AuditLog(tmp_path / "audit.log")

    def broken(lines: list[bytes]) -> None:
        raise ValueError("I/O operation on closed file")

    monkeypatch.setattr(log, "_write_lines", broken)
    results = await asyncio.wait_for(asyncio.gather(log.write_soon({"n": 1}), log.write_soon({"n": 2})), 5)  # type: ignore[arg-type]
    assert results == [False, False] and log.dropped == 2 and not log.healthy
    err = capfd.readouterr().err
    assert '"n":1' in err and '"n":2' in err


CRASHER = """
import asyncio, os, signal, sys
from pathlib import Path
from gateway.audit.log import AuditLog

async def main():
    log = AuditLog(Path(sys.argv[1]))
    async def request(i):
        await log.write_soon({"i": i})
        print(i, flush=True)  # acknowledged: the client would now get its answer
    await asyncio.gather(*(request(i) for i in range(50)))
    for i in range(50, 80):
        log.write_soon({"i": i})  # queued, never acknowledged
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


@pytest.mark.slow
def test_a_crash_loses_no_acknowledged_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", CRASHER, str(tmp_path / "audit.log")], capture_output=True, text=True, timeout=30
    )
    acknowledged = {int(x) for x in out.stdout.split()}
    assert acknowledged == set(range(50)), out.stderr
    written = {json.loads(x)["i"] for x in (tmp_path / "audit.log").read_text().splitlines()}
    assert acknowledged <= written
    assert verify([tmp_path / "audit.log"]).ok
