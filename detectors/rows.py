"""Per-user-day feature rows, replayed once on every core and kept in a compact file.

Features of one user never depend on another user's records, so the replay splits by user: each
worker process reads every audit file but parses only the lines of its share of the users (a byte
search for the ``"user"`` value decides, before any JSON parsing), runs its own aggregator, and
returns its rows and user histories. The shares are disjoint, so the merged result is the same as
one process's replay (the tests check it), only faster.

The peer-country features are the exception (whether colleagues worked from a country,
detectors.peers): a first pass, a byte search with no JSON parsing, collects every user's countries
and each worker's aggregator starts from all of them.

The rows file (``.npz``: feature matrix, user/role/day columns, snapshot times, end-of-day flags,
the aggregator's history state and the replay's settings) is what training reads: replaying the
audit logs is by far the costliest step, and a rows file is a few bytes per snapshot.
"""

from __future__ import annotations

import os
import re
import time
import zlib
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detectors.auditlogs import utc_key
from detectors.dataset import Dataset, build
from detectors.features import FEATURE_NAMES
from detectors.peers import Peers
from detectors.replay import expand_paths

ROWS_FORMAT = 1
_USER_KEYS = (b'"user":"', b'"user": "')


def user_of_line(line: bytes) -> bytes | None:
    """The raw ``user`` value of an audit line, without parsing it (None: parse to find out)."""
    for key in _USER_KEYS:
        i = line.find(key)
        if i >= 0:
            start = i + len(key)
            end = line.find(b'"', start)
            return line[start:end] if end > 0 else None
    return None


class Shard:
    """Keeps the lines of users whose crc32 falls on this worker (picklable for the pool)."""

    def __init__(self, index: int, count: int):
        self.index, self.count = index, count

    def __call__(self, line: bytes) -> bool:
        user = user_of_line(line)
        if user is None:  # unusual spelling: parse it (rare), decide by the parsed value
            try:
                value = orjson.loads(line).get("user")
            except (orjson.JSONDecodeError, AttributeError):
                return self.index == 0
            user = str(value).encode() if value is not None else b""
        return zlib.crc32(user) % self.count == self.index


_TIME = re.compile(rb'"time":\s*"([^"]+)"')
_COUNTRY = re.compile(rb'"country":\s*"([^"]+)"')


def _day_of(value: bytes) -> str:
    text = value.decode()
    return (utc_key(text) if not text.endswith(("+00:00", "Z")) else text)[:10]


def _scan(args: tuple[list[str], list[tuple[str, str]], int, int]) -> dict[str, dict[str, str]]:
    """Who worked from which country since when, among one worker's users, without parsing
    JSON: the peer-country features of a user depend on everyone's (detectors.peers)."""
    paths, exclude, index, count = args
    keep, skip, peers = Shard(index, count), set(exclude), Peers()
    for path in paths:
        with open(path, "rb") as fh:
            for line in fh:
                if not keep(line):
                    continue
                c, t, user = _COUNTRY.search(line), _TIME.search(line), user_of_line(line)
                if c is None or t is None or not user:
                    continue
                day, who = _day_of(t.group(1)), user.decode()
                if (who, day) not in skip:
                    peers.note(c.group(1).decode(), who, day)
    return peers.state()


def _work(
    args: tuple[list[str], list[tuple[str, str]], str | None, int, int, dict[str, Any]],
) -> tuple[Dataset, dict[str, Any], int]:
    paths, exclude, snapshots_from, index, count, everyone = args
    peers = Peers()
    peers.load(everyone)
    ds, agg = build(paths, exclude=exclude, snapshots_from=snapshots_from, keep=Shard(index, count), peers=peers)
    return ds, agg.state(), agg.records


def replay_rows(
    paths: Iterable[str | Path],
    *,
    exclude: Iterable[tuple[str, str]] = (),
    snapshots_from: str | None = None,
    workers: int | None = None,
) -> tuple[Dataset, dict[str, Any], dict[str, Any]]:
    """(rows, history state, stats) of a replay split by user over ``workers`` processes
    (default: every core). stats: records, workers, seconds, records_per_second_per_core."""
    files = [str(p) for p in expand_paths(paths)]
    n = max(1, workers or os.cpu_count() or 1)
    skip = sorted(set(exclude))
    started = time.perf_counter()
    if n == 1:
        results = [_work((files, skip, snapshots_from, 0, 1, {}))]
    else:
        with ProcessPoolExecutor(n, mp_context=get_context("fork")) as pool:
            everyone = Peers()  # a first, cheap pass: every worker's users' countries
            for part in pool.map(_scan, [(files, skip, i, n) for i in range(n)]):
                everyone.load(part)
            known = everyone.state()
            results = list(pool.map(_work, [(files, skip, snapshots_from, i, n, known) for i in range(n)]))
    seconds = time.perf_counter() - started
    ds = Dataset.concat([r[0] for r in results])
    state: dict[str, Any] = {"history": {}, "exported_by_day": {}}
    for _, part, _ in results:
        state["history"].update(part["history"])
        state["exported_by_day"].update(part["exported_by_day"])
    state["country_users"] = results[0][1].get("country_users", {})  # each worker had everyone's
    records = sum(r[2] for r in results)
    stats = {
        "records": records,
        "workers": n,
        "seconds": round(seconds, 2),
        "records_per_second_per_core": round(records / max(seconds, 1e-9) / n),
    }
    return ds, state, stats


def save_rows(path: Path, ds: Dataset, state: dict[str, Any], meta: dict[str, Any]) -> None:
    np.savez_compressed(
        path,
        format=np.array(ROWS_FORMAT),
        features=np.array(FEATURE_NAMES),
        X=ds.X,
        users=np.array(ds.users),
        roles=np.array(ds.roles),
        days=np.array(ds.days, dtype="U10"),
        times=ds.times,
        final=ds.final,
        state=np.frombuffer(orjson.dumps(state), dtype=np.uint8),
        meta=np.frombuffer(orjson.dumps(meta), dtype=np.uint8),
    )


def load_rows(path: Path) -> tuple[Dataset, dict[str, Any], dict[str, Any]]:
    """(rows, history state, meta) from a rows file; refuses one of other features."""
    with np.load(path, allow_pickle=False) as z:
        if int(z["format"]) != ROWS_FORMAT or tuple(z["features"].tolist()) != FEATURE_NAMES:
            raise ValueError(f"{path}: rows of another format or other features; replay the audit logs again")
        ds = Dataset(
            z["X"],
            z["users"].tolist(),
            z["roles"].tolist(),
            z["days"].tolist(),
            z["times"],
            z["final"].astype(bool),
        )
        state = orjson.loads(z["state"].tobytes())
        meta = orjson.loads(z["meta"].tobytes())
    return ds, state, meta
