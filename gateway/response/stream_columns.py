"""What a streamed CSV answer's header decides, once: column positions, masks, scope, output columns.

The same reading as the buffered path (gateway.response.filter / mask.mask_table): a header maps to
the field the catalogue's ``csv_columns`` names (else to itself), masks match fields by their
spellings (aliases, case-insensitive resources), ``remove`` masks and fields the resource does not
declare drop the column, ``redact``/``hash`` change the cell.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from typing import Any

from gateway import fieldpath
from gateway.model import Endpoint, Identity
from gateway.response import mask as masking
from gateway.response.formats import unenforceable
from gateway.response.mask import CompiledMask, spellings
from gateway.response.paths import compiled
from gateway.response.scope import scope_fields, wanted_values
from gateway.response.stream_plain import PlainWriter, plain_writer

FastScope = list[tuple[int, frozenset[str]]]  # (column, values that put a row in scope)


@dataclasses.dataclass(slots=True)
class CsvLayout:
    columns: list[str]
    width: int
    terminator: str
    id_index: int | None  # the id column (for distinct-record counts), if present
    scope_columns: list[tuple[str, int]]  # what the generic scope test reads, by header
    fast_scope: FastScope | None  # the scope as plain column tests, when it is one (else None)
    changes: list[tuple[int, Callable[[str], str]]]  # redact / hash, by column
    removed_fields: set[str]  # remove masks whose column is present (masked whatever the rows)
    changed_fields: set[str]  # redact/hash masks whose column is present (masked once a row goes out)
    keep: list[int]  # output columns, in order
    keep_all: bool
    plain_out: bool  # more than one output column: an empty cell needs no quotes
    needs_quotes: Callable[[str], object]  # a cell the writer quotes (delimiter, quote, CR, LF)
    write_plain: PlainWriter  # plain rows in scope -> their output (gateway.response.stream_plain)
    in_scope: Callable[[list[str]], bool] | None  # fast_scope as one test of a row's cells
    # bytes one of which every row in scope holds (fast_scope's values), when that is sure: a value
    # with a quote is written doubled inside a quoted cell, so then None
    scope_probe: tuple[bytes, ...] | None


def layout(
    columns: list[str],
    terminator: str,
    endpoint: Endpoint,
    scope: str,
    masks: tuple[CompiledMask, ...],
    identity: Identity | None,
    directory: Any,
) -> CsvLayout:
    if len(set(columns)) != len(columns):
        raise unenforceable("CSV header repeats a column name")
    resource = endpoint.resource
    names = {header: column.field for header, column in endpoint.csv_columns.items()}
    index = {c: i for i, c in enumerate(columns)}
    id_column = next((h for h, n in names.items() if n == resource.id_field), resource.id_field)
    removed: set[int] = set()
    removed_fields: set[str] = set()
    changed_fields: set[str] = set()
    changes: list[tuple[int, Callable[[str], str]]] = []
    fold = resource.case_insensitive
    for mask in masks:
        assert mask.column is not None  # checked by the filter before the answer started
        wanted = spellings(resource, mask.column)
        for i, header in enumerate(columns):
            name = names.get(header, header)
            if (name == mask.column) if wanted is None else ((name.casefold() if fold else name) in wanted):
                if mask.op == "remove":
                    removed.add(i)
                    removed_fields.add(mask.field)
                else:
                    changes.append((i, changer(mask)))
                    changed_fields.add(mask.field)
    allowed = resource.fields
    keep = [
        i
        for i, c in enumerate(columns)
        if i not in removed and (allowed is None or ((n := names.get(c, c)).casefold() if fold else n) in allowed)
    ]
    fast_scope = _fast_scope(endpoint, scope, identity, directory, index)
    return CsvLayout(
        columns=columns,
        width=len(columns),
        terminator=terminator,
        id_index=index.get(id_column),
        scope_columns=[(c, index[c]) for c in _scope_keys(endpoint, scope) if c in index],
        fast_scope=fast_scope,
        changes=changes,
        removed_fields=removed_fields,
        changed_fields=changed_fields,
        keep=keep,
        keep_all=keep == list(range(len(columns))),
        plain_out=len(keep) > 1,
        needs_quotes=re.compile('[,"\r\n]').search,
        write_plain=plain_writer(keep, changes, terminator),
        in_scope=None if fast_scope is None else _scope_of_cells(fast_scope),
        scope_probe=_probe(fast_scope),
    )


def _probe(pairs: FastScope | None) -> tuple[bytes, ...] | None:
    values = [value for _, wanted in pairs or () for value in wanted]
    if pairs is None or any('"' in value for value in values):
        return None
    return tuple(value.encode("utf-8") for value in values)


def _scope_of_cells(pairs: FastScope) -> Callable[[list[str]], bool]:
    """A row is in scope when one of its scope cells holds a wanted value (no pair: none is)."""
    if len(pairs) == 1:
        ((column, wanted),) = pairs
        return lambda cells: cells[column] in wanted
    return lambda cells: any(cells[i] in wanted for i, wanted in pairs)


def _fast_scope(
    endpoint: Endpoint, scope: str, identity: Identity | None, directory: Any, index: dict[str, int]
) -> FastScope | None:
    """The scope test as (column, wanted values) pairs when every field is a plain tag column (what
    scope._field_test does for a top-level field; a cell is always a str); None otherwise."""
    if scope == "all" or endpoint.csv_scope.get(scope) is not None:
        return None
    pairs = []
    for field in scope_fields(endpoint.resource, scope) or ():
        key = fieldpath.first_segment(compiled(field.path))
        if key is None or field.member_of is not None:
            return None
        wanted = wanted_values(field, identity, directory)
        if wanted and key in index:
            pairs.append((index[key], wanted))
    return pairs


def _scope_keys(endpoint: Endpoint, scope: str) -> set[str]:
    """The columns the generic scope test reads: the endpoint's scope column or the resource's fields."""
    if scope == "all":
        return set()
    own = endpoint.csv_scope.get(scope)
    if own is not None:
        return {own.path}
    keys = set()
    for field in scope_fields(endpoint.resource, scope) or ():
        key = fieldpath.first_segment(compiled(field.path))
        if key is not None:
            keys.add(key)
    return keys


def changer(mask: CompiledMask) -> Callable[[str], str]:
    """``mask.redact`` / ``mask.pseudonym`` for str cells; the keyed hash prepared once per answer."""
    if mask.op == "hash":
        # = mask.pseudonym (HMAC-SHA256, RFC 2104) with the padded key's two states hashed once per
        # answer: per cell only two copies and two updates, not hmac.HMAC's Python wrapper.
        key = masking.MASK_KEY  # the key in force when the answer started (use_key_from_env)
        key = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

        def pseudonym(value: str) -> str:
            h = inner.copy()
            h.update(value.encode("utf-8"))
            o = outer.copy()
            o.update(h.digest())
            return "hmac:" + o.hexdigest()[:16]

        return pseudonym
    keep = mask.keep_last

    def redact(value: str) -> str:
        shown = keep if 0 < keep < len(value) else 0
        return "*" * (len(value) - shown) + (value[-shown:] if shown else "")

    return redact
