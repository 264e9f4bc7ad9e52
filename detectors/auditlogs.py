"""Reading recorded audit logs: files in time order, directories as their audit files."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from detectors.events import is_stream_start


def read_audit_logs(
    paths: Iterable[str | Path], keep: Callable[[bytes], bool] | None = None
) -> Iterator[dict[str, Any]]:
    """Records of several audit files in time order (each file is already in order).

    Blank and unparsable lines are skipped: a torn last line after a crash must not stop training.
    A streamed export's start line is skipped too: it is not a request (its final line is).
    ``keep``, if given, sees each raw line first and skips those it refuses before any parsing
    (detectors.rows gives each worker process its share of the users this way).
    """

    def one(path: Path) -> Iterator[tuple[str, int, dict[str, Any]]]:
        with open(path, "rb") as fh:
            for n, line in enumerate(fh):
                if keep is not None and not keep(line):
                    continue
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("time"), str) and not is_stream_start(rec):
                    yield utc_key(rec["time"]), n, rec

    streams = [one(Path(p)) for p in expand_paths(paths)]
    for _key, _n, rec in heapq.merge(*streams, key=lambda t: t[0]):
        yield rec


def utc_key(value: str) -> str:
    if value.endswith(("+00:00", "Z")):
        return value
    try:
        return datetime.fromisoformat(value).astimezone(UTC).isoformat()
    except ValueError:
        return value


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; a directory stands for its audit*.log* files, in name order."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(x for x in p.iterdir() if x.name.startswith("audit") and x.is_file()))
        else:
            out.append(p)
    return out
