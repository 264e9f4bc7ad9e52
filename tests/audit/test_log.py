"""The audit file: one line per record, rotation by size, failures counted and never silent."""

from __future__ import annotations

import json

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
