"""An NDJSON answer filtered line by line as it streams: scope, masks, fields, counts, a row budget.

Each line of an ``ndjson`` endpoint (records ``["$"]``) is one record, filtered as the buffered JSON
filter filters the records of a list (gateway.response.answer.restrict over ``data[]``):

    feed(piece) ─► pending + piece ─► cut after the last LF ─► each non-blank line parsed (orjson)
                ─► a JSON object, else refused ─► scope (scope.scope_test) ─► budget ─► ids
                ─► masks (mask.mask_records) ─► fields (answer.trim_fields) ─► orjson, one per line

The output is re-encoded by orjson (the client parses exactly what was filtered: duplicate keys,
odd escapes and the like cannot show it something else), one record per line, ``\\n`` after each.
Memory is one piece plus one pending line; a line longer than ``max_pending`` is refused. Anything
that is not a JSON object per line (bad JSON, a list, bad UTF-8, a body ending inside a line that
does not parse) raises ``ObligationUnenforceable``; after the first line has gone out the caller
cuts the connection.

Differences from the buffered filter, all on the side of sending less: two lines with the same id
are two records exported (there is no document in which one record could be reached twice; the
buffered filter counts such copies once); an answer contract beyond the records themselves
(``related``, ``aggregates``, ``metadata``, ``max_records``) cannot be applied to a stream and is
refused before anything is sent.

``budget``: the most in-scope records this answer may carry (gateway.signals.allowance); the first
in-scope record over it sets ``cut`` and ends the filtering, as in gateway.response.stream_csv.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.model import Endpoint, Identity, Obligations
from gateway.response.answer import trim_fields
from gateway.response.formats import unenforceable
from gateway.response.mask import compile_masks, mask_records
from gateway.response.scope import scope_test

MAX_IDS = 200  # the audit line keeps the first 200 ids (gateway.audit.events); no more are held


class NdjsonStreamFilter:
    def __init__(
        self,
        endpoint: Endpoint,
        obligations: Obligations,
        identity: Identity | None,
        *,
        max_pending: int,
        budget: int | None = None,
        directory: Any = None,
    ):
        if tuple(endpoint.records) != ("$",):
            raise unenforceable(f"{endpoint.operation}: ndjson records must be '$' (one record a line)")
        contract = endpoint.answer
        if contract.related or contract.aggregates or contract.metadata or contract.max_records is not None:
            raise unenforceable(f"{endpoint.operation}: an ndjson answer declares only its records")
        self.resource = endpoint.resource
        self.masks = compile_masks(tuple(obligations.masks))
        self.test = scope_test(endpoint.resource, obligations.scope, identity, directory)
        self.max_pending, self.budget = max_pending, budget
        self.seen = self.returned = 0
        self.ids: list[str] = []
        self.masked: set[str] = set()
        self.cut = False
        self.header_done = True  # no header: the first piece may go out as soon as it is filtered
        self._pending = b""

    def feed(self, piece: bytes) -> bytes:
        if self.cut or not piece:
            return b""
        buf = self._pending + piece if self._pending else piece
        end = buf.rfind(b"\n") + 1
        self._pending = buf[end:]
        if len(self._pending) > self.max_pending:
            raise unenforceable(f"an NDJSON line is longer than {self.max_pending} bytes (limits.stream_buffer_bytes)")
        return self._lines(buf[:end].split(b"\n")) if end else b""

    def finish(self) -> bytes:
        """The last line (without a line end): it must be a whole record, or blank."""
        rest, self._pending = self._pending, b""
        return self._lines([rest]) if rest and not self.cut else b""

    def fields_masked(self) -> set[str]:
        return self.masked

    def _lines(self, lines: list[bytes]) -> bytes:
        records: list[dict[str, Any]] = []
        for line in lines:
            if not line.strip():
                continue  # a blank line (and the empty string after the last LF)
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise unenforceable(f"NDJSON line {self.seen + len(records) + 1} is not valid JSON: {exc}") from None
            if type(record) is not dict:
                raise unenforceable(f"NDJSON line {self.seen + len(records) + 1} is not a JSON object")
            records.append(record)
        test = self.test
        kept = records if test is None else [r for r in records if test(r)]
        if self.budget is not None and self.returned + len(kept) > self.budget:
            # The first record over the budget ends the stream: read (seen), not sent, as in CSV.
            crossing = kept[self.budget - self.returned]
            records = records[: next(i for i, r in enumerate(records) if r is crossing) + 1]
            kept = kept[: self.budget - self.returned]
            self.cut = True
        self.seen += len(records)
        self.returned += len(kept)
        if len(self.ids) < MAX_IDS:
            id_field = self.resource.id_field
            for record in kept[: MAX_IDS - len(self.ids)]:  # ids taken before masks (an id may be masked)
                value = record.get(id_field)
                if value is not None and value != "":
                    self.ids.append(str(value))
        if not kept:
            return b""
        self.masked |= mask_records(kept, self.masks, self.resource)
        trim_fields(kept, self.resource)
        return b"\n".join(map(orjson.dumps, kept)) + b"\n"
