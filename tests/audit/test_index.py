"""The audit index (gateway.audit.index) answers exactly what the scan of the files answers, pages
included, and keeps doing so as lines are appended, files rotate and the indexer stops mid-way."""

from __future__ import annotations

import os
import random
import sqlite3
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from gateway.audit.index import AuditIndex
from gateway.audit.index_job import BackgroundIndexer
from gateway.audit.index_search import search_page
from gateway.audit.log import AuditLog
from gateway.audit.search import AuditQuery, search

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OPERATIONS = [f"{kind}.{verb}" for kind in ("customers", "orders", "invoices") for verb in ("list", "view", "export")]


def record(i: int, rng: random.Random, n: int, users: int) -> dict:
    """Line ``i`` of ``n`` over 60 days (a few seconds of jitter, as concurrent requests are written)."""
    op = rng.choice(OPERATIONS)
    deny = rng.random() < 0.2
    return {
        "time": (T0 + timedelta(seconds=60 * 86400 * i / n + rng.uniform(-2, 2))).isoformat(timespec="milliseconds"),
        "decision_id": f"{i:08x}",
        "user": f"user{rng.randrange(users):03d}",
        "operation": op,
        "effect": "deny" if deny else "allow",
        "reason": rng.choice(("role-unauthorized", "time-window-outside")) if deny else "allowed",
        "rules": [f"rule-{op.split('.')[0]}"],
        "reasons": ["role-ok", "time-window-ok"],
        "shadow": [{"rule": "shadow-bulk", "would": "deny", "reason": "x"}] if rng.random() < 0.05 else [],
        "path": f"/api/{op.split('.')[0]}/{i}",
    }


def generate(path, n: int, *, users: int, files: int) -> None:
    """``n`` lines in ``files`` files, ``audit.log.{files-1}`` the oldest, ``audit.log`` the newest."""
    rng = random.Random(7)
    per = -(-n // files)
    for k in range(files):
        name = path.name if k == files - 1 else f"{path.name}.{files - 1 - k}"
        lines = [orjson.dumps(record(i, rng, n, users)) + b"\n" for i in range(k * per, min(n, (k + 1) * per))]
        path.with_name(name).write_bytes(b"".join(lines))


QUERIES = [
    AuditQuery(),
    AuditQuery(user="user003"),
    AuditQuery(user="user003", operation="orders.list"),
    AuditQuery(user="user007", operation="customers.*", since=T0 + timedelta(days=10), until=T0 + timedelta(days=40)),
    AuditQuery(operation="*.export", effect="deny"),
    AuditQuery(operation="[ci]*.view"),  # fnmatch's brackets: checked on the line only
    AuditQuery(operation="*"),  # also the lines without an operation, as the scan's glob does
    AuditQuery(rule="rule-invoices", reason="role-unauthorized"),
    AuditQuery(reason="time-window-ok", until=T0 + timedelta(days=3)),
    AuditQuery(shadow=True),
    AuditQuery(rule="shadow-bulk", since=T0 + timedelta(days=50)),
    AuditQuery(since=T0 + timedelta(days=59, hours=12)),
    AuditQuery(user="nobody"),
]


def scan(path, query):
    return search(path, query, limit=10**9, max_bytes=1 << 62).records


def every_page(index, query, limit):
    out, before = [], None
    while True:
        page = index.query(query, limit=limit, before=before)
        assert len(page.records) <= limit and page.stale == 0
        out += page.records
        if not page.more:
            return out
        before = page.positions[-1]


def rows(index):
    """The index's content, independent of file sequence numbers: (inode, offset, columns...)."""
    with sqlite3.connect(index.db_path) as conn:
        inodes = dict(conn.execute("SELECT seq, ino FROM files"))
        return [
            (inodes[pos >> 40], pos & ((1 << 40) - 1), *rest)
            for pos, *rest in conn.execute(
                "SELECT id, n, t, user, operation, effect, rules, reasons, shadow FROM lines"
            )
        ]


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "audit.log"
    generate(path, 2000, users=12, files=3)
    with open(path, "ab") as f:  # lines the scan skips or reads oddly: the index must agree
        f.write(b"not json\n\n[1, 2]\n" + orjson.dumps({"time": "yesterday", "user": "user003"}) + b"\n")
        f.write(orjson.dumps({"user": "user003", "operation": None, "shadow": [{"would": "deny"}]}) + b"\n")
    return path


@pytest.mark.parametrize("query", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_the_index_answers_the_same_lines_as_the_scan_page_by_page(log, query):
    index = AuditIndex(log)
    done = index.catch_up_all()
    assert done.lines == 2000 + 5 and done.bad_lines == 2
    expected = scan(log, query)
    assert every_page(index, query, 100) == expected
    assert every_page(index, query, 7) == expected  # page boundaries fall anywhere


def test_appended_lines_are_found_after_a_catch_up_and_a_torn_line_waits_for_its_newline(log):
    index = AuditIndex(log)
    index.catch_up_all()
    extra = orjson.dumps(record(5000, random.Random(1), 2000, 12)) + b"\n"
    with open(log, "ab") as f:
        f.write(extra + extra[:40])  # a whole line and the start of another
    query = AuditQuery(user=orjson.loads(extra)["user"])
    assert index.query(query).behind_bytes == len(extra) + 40
    assert index.query(query).records != scan(log, query)  # not indexed yet: the newest is missing
    assert index.catch_up_all().lines == 1
    assert every_page(index, query, 10) == scan(log, query)
    with open(log, "ab") as f:
        f.write(extra[40:])
    assert index.catch_up_all().lines == 1
    assert every_page(index, query, 10) == scan(log, query)


def test_rotation_while_indexing_equals_a_rebuild_and_the_scan(tmp_path):
    """The gateway's own writer rotates (keeping 2 backups) while the index catches up now and then."""
    path = tmp_path / "audit.log"
    writer = AuditLog(path, max_bytes=60_000, backups=2)
    index = AuditIndex(path)
    for i in range(1500):
        writer.write(
            {
                "time": (datetime(2026, 3, 3, tzinfo=UTC) + timedelta(seconds=i)).isoformat(),
                "user": f"u{i % 5}",
                "operation": "customers.view" if i % 3 else "customers.export",
                "effect": "deny" if i % 7 == 0 else "allow",
                "reason": "ok",
            }
        )
        if i % 170 == 0:
            index.catch_up()
    writer.close()
    done = index.catch_up_all()
    assert done.dropped_files > 0  # files rotated out of the backups lost their rows
    rebuilt = AuditIndex(path, tmp_path / "rebuilt.sqlite")
    rebuilt.rebuild()
    assert rows(index) == rows(rebuilt)
    for query in (AuditQuery(), AuditQuery(user="u2", operation="customers.export"), AuditQuery(effect="deny")):
        assert every_page(index, query, 25) == scan(path, query) != []


def test_a_rotation_not_yet_seen_still_answers_from_the_indexed_files(log):
    index = AuditIndex(log)
    index.catch_up_all()
    os.replace(log.with_name("audit.log.2"), log.with_name("audit.log.3"))  # as the writer shifts backups
    os.replace(log.with_name("audit.log.1"), log.with_name("audit.log.2"))
    os.replace(log, log.with_name("audit.log.1"))
    log.write_bytes(orjson.dumps({"time": T0.isoformat(), "user": "user003"}) + b"\n")
    query = AuditQuery(user="user003")
    assert every_page(index, query, 50) == scan(log, query)[1:]  # all but the new file's line
    index.catch_up_all()
    assert every_page(index, query, 50) == scan(log, query)


def test_a_replaced_file_is_read_again_and_a_restored_older_one_restarts_the_index(log):
    index = AuditIndex(log)
    index.catch_up_all()
    log.unlink()
    log.write_bytes(orjson.dumps({"time": T0.isoformat(), "user": "user003", "operation": "x.y"}) + b"\n")
    index.catch_up_all()
    assert every_page(index, AuditQuery(user="user003"), 50) == scan(log, AuditQuery(user="user003"))
    log.with_name("audit.log.3").write_bytes(b'{"user":"user003"}\n')  # older than every indexed file
    assert index.catch_up_all().restarted
    assert rows(index) == rows(_rebuilt(log))


def _rebuilt(log):
    other = AuditIndex(log, log.with_name("other.sqlite"))
    other.rebuild()
    return other


def test_an_indexer_stopped_mid_way_goes_on_from_its_last_commit(log):
    index = AuditIndex(log)
    first = index.catch_up(batch=300)
    assert (first.lines, first.done) == (300, False)
    again = AuditIndex(log)  # a new process after the crash
    assert again.catch_up_all().lines == 2005 - 300
    assert rows(again) == rows(_rebuilt(log))


def test_the_background_job_indexes_and_stops_between_batches(log):
    job = BackgroundIndexer(log)
    assert job.run_once() == 2005
    assert job.run_once() == 0
    job.stopping.set()
    with open(log, "ab") as f:
        f.write(b'{"user":"late"}\n')
    assert job.run_once() == 0  # stopping: no new transaction


def test_the_console_search_falls_back_to_the_scan_while_the_index_is_far_behind(log):
    query = AuditQuery(user="user003")
    found = search_page(log, query, limit=10, max_bytes=1 << 30, quick_bytes=100_000)
    assert found.via == "scan" and found.behind_bytes > 0 and found.records == scan(log, query)[:10]
    AuditIndex(log).catch_up_all()
    with open(log, "ab") as f:
        f.write(orjson.dumps({"time": T0.isoformat(), "user": "user003"}) + b"\n")
    found = search_page(log, query, limit=10, max_bytes=1 << 30)  # a small lag: read by the search itself
    assert found.via == "index" and found.behind_bytes == 0 and found.records == scan(log, query)[:10]
    assert found.next_before is not None


def test_the_newest_lines_are_never_missing_while_the_indexing_process_holds_the_index(log):
    """A small lag the search cannot index itself (the indexing process is mid-transaction): the
    files answer the first page, so the newest lines are in it (the index alone would miss them)."""
    index = AuditIndex(log)
    index.catch_up_all()
    with open(log, "ab") as f:
        f.write(orjson.dumps({"time": (T0 + timedelta(days=90)).isoformat(), "user": "newcomer"}) + b"\n")
    holder = index.connect()
    holder.execute("BEGIN IMMEDIATE")  # what the indexing process holds while it writes a batch
    try:
        found = search_page(log, AuditQuery(user="newcomer"), limit=10, max_bytes=1 << 30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [r["user"] for r in found.records] == ["newcomer"] and found.via == "scan"


def test_the_index_command_works_as_the_readme_documents_it(log, capsys):
    from gateway.cli import main
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    update = "crmgw audit index var/audit.log             # update"
    rebuild = "crmgw audit index var/audit.log --rebuild   # forget the index"
    assert update in readme and rebuild in readme

    def run(documented: str) -> str:
        argv = documented.split("#")[0].split()[1:]
        assert main([str(log) if a == "var/audit.log" else a for a in argv]) == 0
        return capsys.readouterr().out

    first = run(update)
    assert first.startswith("updated ") and ": 2005 new line(s) (2 not JSON)" in first
    assert ": 0 new line(s)" in run(update)
    with open(log, "ab") as f:
        f.write(b'{"user":"late"}\n')
    assert ": 1 new line(s)" in run(update)
    assert run(rebuild).startswith("rebuilt ") and ": 2006 new line(s)" in run(rebuild)
    assert rows(AuditIndex(log)) == rows(_rebuilt(log))
    assert main(["audit", "index", str(log.with_name("missing.log"))]) == 2


@pytest.mark.slow  # starts the indexing process
async def test_the_gateway_job_indexes_in_a_child_process_as_a_rebuild_would(log):
    import asyncio

    def indexed() -> int:
        conn = AuditIndex(log).connect()
        try:
            return conn.execute("SELECT count(*) FROM lines").fetchone()[0]
        finally:
            conn.close()

    async def until(n: int) -> None:
        for _ in range(300):
            if indexed() == n:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"not {n} rows")

    job, other = BackgroundIndexer(log), BackgroundIndexer(log)
    try:
        await job.tick()
        child = job._child
        assert child is not None and job.starts == 1
        await other.tick()  # another worker: the lock is taken, no second child
        assert other._child is None
        await until(2002)  # 2005 lines: 2 not JSON objects, 1 empty
        with open(log, "ab") as f:
            f.write(b'{"user":"late"}\n')
        await until(2003)
        await job.tick()
        assert job._child is child  # still running: not started twice
    finally:
        await job.close()
    assert child.returncode is not None
    assert rows(AuditIndex(log)) == rows(_rebuilt(log))
    await other.tick()  # the lock is free again: this one starts its own
    assert other._child is not None
    await other.close()
