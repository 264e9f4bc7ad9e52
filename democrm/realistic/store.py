"""The realistic profile's records, in memory: ``{resource: {uuid: record}}`` in insertion order.

Records are kept exactly as the API shows them (profile and team objects already rendered), so what
a test reads from the store is what a client would have read. Every read and write copies, so
neither a handler nor a test can change the CRM's state by mutating a dict it was handed. New ids
come from a generator seeded from the app's seed: a fresh app with the same seed hands out the
same ids in the same order.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from democrm.realistic.seed import new_uuid

RESOURCES: tuple[str, ...] = ("leads", "accounts")


class RealisticStore:
    """The leads and accounts of one realistic CRM. Unknown resource names raise KeyError."""

    def __init__(self, seed: int, records: Mapping[str, Iterable[dict[str, Any]]] | None = None) -> None:
        self._tables: dict[str, dict[str, dict[str, Any]]] = {resource: {} for resource in RESOURCES}
        self._ids = random.Random(f"democrm/realistic/new-ids/{seed}")
        for resource, rows in (records or {}).items():
            for row in rows:
                self.insert(resource, row)

    def _table(self, resource: str) -> dict[str, dict[str, Any]]:
        if resource not in self._tables:
            raise KeyError(f"unknown resource {resource!r}")
        return self._tables[resource]

    def new_id(self) -> str:
        return new_uuid(self._ids)

    def get(self, resource: str, record_id: str) -> dict[str, Any] | None:
        record = self._table(resource).get(record_id)
        return copy.deepcopy(record) if record is not None else None

    def all(self, resource: str) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self._table(resource).values()))

    def count(self, resource: str) -> int:
        return len(self._table(resource))

    def insert(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store a complete record under its own ``id`` (a new id when it has none)."""
        record = copy.deepcopy(record)
        if record.get("id") is None:  # id first, as in every answer
            record = {"id": self.new_id(), **{key: value for key, value in record.items() if key != "id"}}
        table = self._table(resource)
        if record["id"] in table:
            raise KeyError(f"{resource} {record['id']} exists already")
        table[record["id"]] = record
        return copy.deepcopy(record)

    def replace(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        """Overwrite an existing record (same ``id``) with a complete new version, in place."""
        table = self._table(resource)
        if record["id"] not in table:
            raise KeyError(f"no {resource} {record['id']}")
        table[record["id"]] = copy.deepcopy(record)
        return copy.deepcopy(record)

    def delete(self, resource: str, record_id: str) -> bool:
        return self._table(resource).pop(record_id, None) is not None


REALISTIC_STORE = web.AppKey("REALISTIC_STORE", RealisticStore)
