"""SQLite access for democrm: three tables, plain synchronous calls.

The CRM is a test and demo fixture, so the store favours being obviously correct over being clever:
one connection, one table per resource, nested values (a contact's ``owner``, a deal's
``assigned_to``) kept as JSON text and decoded on the way out. Column names only ever come from
``TABLES`` (never from a request), so the SQL built here cannot be steered by a client; values are
always bound parameters.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal

ColumnType = Literal["int", "str", "float", "json"]

# Column order here is the order of the record's keys and of the CSV export's columns.
TABLES: dict[str, dict[str, ColumnType]] = {
    "customers": {
        "id": "int",
        "name": "str",
        "email": "str",
        "phone": "str",
        "company": "str",
        "owner_id": "str",
        "team": "str",
        "department": "str",
        "region": "str",
        "branch": "str",
        "status": "str",
        "quote_price": "float",
        "complaints": "str",
        "notes": "str",
        "created_at": "str",
        "updated_at": "str",
    },
    "contacts": {
        "id": "int",
        "customer_id": "int",
        "first_name": "str",
        "last_name": "str",
        "email": "str",
        "phone": "str",
        "owner": "json",
        "team": "str",
        "department": "str",
        "region": "str",
        "branch": "str",
    },
    "deals": {
        "id": "int",
        "customer_id": "int",
        "title": "str",
        "amount": "float",
        "stage": "str",
        "assigned_to": "json",
        "team": "str",
        "department": "str",
        "region": "str",
        "branch": "str",
    },
}
_SQL_TYPES = {"int": "INTEGER", "str": "TEXT", "float": "REAL", "json": "TEXT"}


def _create_statement(table: str) -> str:
    columns = ["id INTEGER PRIMARY KEY AUTOINCREMENT"]  # AUTOINCREMENT: a deleted id is never reused
    columns += [f"{name} {_SQL_TYPES[kind]}" for name, kind in TABLES[table].items() if name != "id"]
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)})"


_COPYING = threading.Lock()


class Store:
    """The CRM's tables. ``path`` is a file name or ``":memory:"``."""

    def __init__(self, path: str = ":memory:", *, any_thread: bool = False) -> None:
        # any_thread: a template other threads copy from (democrm.app.seeded), under _COPYING
        self._db = sqlite3.connect(path, check_same_thread=not any_thread)
        self._db.row_factory = sqlite3.Row
        with self._db:
            for table in TABLES:
                self._db.execute(_create_statement(table))

    def close(self) -> None:
        self._db.close()

    def copy_from(self, other: Store) -> None:
        """Make this store a copy of ``other`` (SQLite's online backup: pages, not rows)."""
        with _COPYING:  # one copy at a time from a template shared between threads
            other._db.backup(self._db)

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _columns(table: str) -> dict[str, ColumnType]:
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}")
        return TABLES[table]

    def _decode(self, table: str, row: sqlite3.Row) -> dict[str, Any]:
        record = dict(row)
        for name, kind in self._columns(table).items():
            if kind == "json" and record.get(name) is not None:
                record[name] = json.loads(record[name])
        return record

    def _encode(self, table: str, values: Mapping[str, Any]) -> dict[str, Any]:
        columns = self._columns(table)
        unknown = set(values) - set(columns)
        if unknown:
            raise KeyError(f"unknown columns for {table}: {sorted(unknown)}")
        return {
            name: json.dumps(value) if columns[name] == "json" and value is not None else value
            for name, value in values.items()
        }

    def _where(self, table: str, filters: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
        if not filters:
            return "", []
        columns = self._columns(table)
        for name in filters:
            if name not in columns:
                raise KeyError(f"unknown filter column {name!r}")
        return " WHERE " + " AND ".join(f"{name} = ?" for name in filters), list(filters.values())

    # -- queries ---------------------------------------------------------------------------------

    def count(self, table: str, filters: Mapping[str, Any] | None = None) -> int:
        where, params = self._where(table, filters)
        (total,) = self._db.execute(f"SELECT COUNT(*) FROM {table}{where}", params).fetchone()
        return int(total)

    def page(self, table: str, *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """One page of records in id order, and the total number of records."""
        self._columns(table)
        rows = self._db.execute(f"SELECT * FROM {table} ORDER BY id LIMIT ? OFFSET ?", (limit, offset))
        return [self._decode(table, row) for row in rows], self.count(table)

    def all(self, table: str, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        where, params = self._where(table, filters)
        rows = self._db.execute(f"SELECT * FROM {table}{where} ORDER BY id", params)
        return [self._decode(table, row) for row in rows]

    def get(self, table: str, record_id: int) -> dict[str, Any] | None:
        self._columns(table)
        row = self._db.execute(f"SELECT * FROM {table} WHERE id = ?", (record_id,)).fetchone()
        return self._decode(table, row) if row is not None else None

    # -- changes ---------------------------------------------------------------------------------

    def _written(self, table: str, record_id: int) -> dict[str, Any]:
        """A record this store has just written; it cannot be missing (one connection, no race)."""
        record = self.get(table, record_id)
        if record is None:
            raise LookupError(f"{table} {record_id} is missing right after it was written")
        return record

    def insert_many(self, table: str, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Insert all records in one transaction (all or nothing); return them with their ids."""
        ids: list[int] = []
        with self._db:
            for record in records:
                values = self._encode(table, {k: v for k, v in record.items() if k != "id"})
                names = ", ".join(values)
                marks = ", ".join("?" for _ in values)
                cursor = self._db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(values.values()))
                assert cursor.lastrowid is not None  # sqlite3 sets it after every INSERT
                ids.append(cursor.lastrowid)
        return [self._written(table, record_id) for record_id in ids]

    def insert(self, table: str, record: Mapping[str, Any]) -> dict[str, Any]:
        return self.insert_many(table, [record])[0]

    def update(self, table: str, record_id: int, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        values = self._encode(table, {k: v for k, v in changes.items() if k != "id"})
        if values:
            assignments = ", ".join(f"{name} = ?" for name in values)
            with self._db:
                self._db.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", [*values.values(), record_id])
        return self.get(table, record_id)

    def delete_many(self, table: str, record_ids: Iterable[int]) -> int:
        """Delete the records that exist among ``record_ids``; return how many were deleted."""
        self._columns(table)
        deleted = 0
        with self._db:
            for record_id in set(record_ids):
                deleted += self._db.execute(f"DELETE FROM {table} WHERE id = ?", (record_id,)).rowcount
        return deleted

    def delete(self, table: str, record_id: int) -> bool:
        return self.delete_many(table, [record_id]) == 1
