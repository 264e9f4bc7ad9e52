"""Saved queue filters, per analyst, in a small JSON file beside the alerts journal.

    {"heidi": {"High open exports": "status=&level=high&type=bulk-export"}, ...}

Only the queue's own filter fields are kept (anything else in a saved query is dropped), at most
``MAX_PER_ANALYST`` per analyst; the file is rewritten whole (temp file + rename) so a reader never
sees half of it. One file per gateway data folder: replicas sharing a data volume share the filters.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode

import orjson

FIELDS = ("status", "level", "type", "user", "since", "until")
MAX_PER_ANALYST = 20
MAX_NAME = 60
_lock = threading.Lock()


def query_of(params: Mapping[str, str]) -> str:
    """The saved form of a queue query: known fields, non-empty, in a fixed order."""
    return urlencode([(k, str(params[k])[:200]) for k in FIELDS if params.get(k)])


class SavedFilters:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def of(self, analyst: str) -> dict[str, str]:
        found = self._read().get(analyst)
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def save(self, analyst: str, name: str, params: Mapping[str, str]) -> None:
        name = " ".join(name.split())[:MAX_NAME]
        if not name:
            raise ValueError("give the filter a name")
        with _lock:
            data = self._read()
            mine = data.setdefault(analyst, {})
            if name not in mine and len(mine) >= MAX_PER_ANALYST:
                raise ValueError(f"at most {MAX_PER_ANALYST} saved filters; delete one first")
            mine[name] = query_of(params)
            self._write(data)

    def delete(self, analyst: str, name: str) -> bool:
        with _lock:
            data = self._read()
            removed = data.get(analyst, {}).pop(name, None) is not None
            if removed:
                self._write(data)
            return removed

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(data))
        os.replace(tmp, self.path)
