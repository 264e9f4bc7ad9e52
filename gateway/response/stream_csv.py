"""A CSV answer filtered row by row as it streams: scope, masks, columns, counts, a row budget.

The same table, the same rules as the buffered path (gateway.response.filter: ``load_csv`` /
``csv_scope_test`` / ``mask_table`` / ``_trim_columns`` / ``dump_csv``), in blocks of whole rows:

    feed(piece) ─► pending + piece ─► cut at the last row end outside quotes
                ─► plain rows out of scope dropped by numpy (gateway.response.stream_select)
                ─► plain rows in scope: split, masked and written by one generated comprehension
                   (gateway.response.stream_plain; needing no change: as they came)
                ─► special rows read by the csv module (strict, UTF-8); those whose bytes hold
                   no value of the caller's scope only counted and width-checked, the others:
                   width check ─► scope ─► budget ─► ids ─► masks ─► columns ─► csv.writer

A row end is a newline preceded by an even number of quotes since the block start: a quoted field
may hold newlines and span pieces, so the bytes after the last row end wait in ``pending``; more than
``max_pending`` of them (a row longer than the setting) is refused. Memory is one piece plus one
pending row, whatever the answer's size. Anything the strict reader refuses raises
``ObligationUnenforceable``; after the first row has gone out the caller must cut the connection.

``budget``: the most in-scope rows this answer may carry (gateway.signals.allowance); the first
in-scope row over it sets ``cut`` and ends the filtering. It counts rows sent, not rows read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.model import Endpoint, Identity, Obligations
from gateway.response.filter import csv_scope_test
from gateway.response.formats import csv_row_writer, unenforceable
from gateway.response.mask import compile_masks
from gateway.response.stream_columns import CsvLayout, layout
from gateway.response.stream_rows import header_row, last_row_end, strict_rows, utf8
from gateway.response.stream_select import Selection, select_rows

MAX_IDS = 200  # the audit line keeps the first 200 ids (gateway.audit.events); no more are held
BOM = "\ufeff"


class CsvStreamFilter:
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
        self.endpoint, self.scope, self.identity, self.directory = endpoint, obligations.scope, identity, directory
        self.masks = compile_masks(tuple(obligations.masks))
        for mask in self.masks:
            if mask.column is None:
                raise unenforceable(f"mask field {mask.field!r} cannot apply to CSV columns")
        # Refuses (before anything is sent) records other than "$" and scope fields that are not columns.
        self.test = csv_scope_test(endpoint, obligations.scope, identity, directory)
        self.max_pending, self.budget = max_pending, budget
        self.seen = self.returned = 0
        self.ids: list[str] = []
        self.cut = False  # the budget ran out: the rest of the answer must not go out
        self.layout: CsvLayout | None = None  # from the header row
        self._pending = b""
        self._any_bytes = False

    @property
    def header_done(self) -> bool:
        return self.layout is not None

    # --- bytes in, bytes out ------------------------------------------------------------------
    def feed(self, piece: bytes) -> bytes:
        if self.cut or not piece:
            return b""
        self._any_bytes = True
        buf = self._pending + piece if self._pending else piece
        end = last_row_end(buf)
        self._pending = buf[end:]
        if len(self._pending) > self.max_pending:
            raise unenforceable(f"a CSV row is longer than {self.max_pending} bytes (limits.stream_buffer_bytes)")
        return self._block(buf[:end]) if end else b""

    def finish(self) -> bytes:
        """The last row (without a line end), checked; raises when the body ended inside a row."""
        rest, self._pending = self._pending, b""
        out = self._block(rest) if rest and not self.cut else b""
        if self.layout is None and self._any_bytes and not self.cut:
            raise unenforceable("CSV body has no header row")
        return out

    def fields_masked(self) -> set[str]:
        """The masks that changed something: removals of a present column, changes of a returned row."""
        if self.layout is None:
            return set()
        return self.layout.removed_fields | (self.layout.changed_fields if self.returned else set())

    # --- one block of whole rows ----------------------------------------------------------------
    def _block(self, block: bytes) -> bytes:
        if self.layout is None:
            return self._first_block(utf8(block))
        if self.test is None or self.layout.fast_scope is not None:
            out = self._selected(block, self.layout)
            if out is not None:
                return out
        return self._rows(utf8(block), self.layout)

    def _first_block(self, text: str) -> bytes:
        bom = text.startswith(BOM)
        if bom:
            text = text[1:]
        newline = text.find("\n")
        terminator = "\r\n" if newline < 0 or text[newline - 1 : newline] == "\r" else "\n"
        head, rest = header_row(text)
        if head is None:
            return b""  # only blank lines so far: the header may still come
        self.layout = lay = layout(
            head, terminator, self.endpoint, self.scope, self.masks, self.identity, self.directory
        )
        out = [BOM] if bom else []
        csv_row_writer(out.append, terminator)([head[i] for i in lay.keep])
        return "".join(out).encode("utf-8") + self._rows(rest, lay)

    def _selected(self, block: bytes, lay: CsvLayout) -> bytes | None:
        """Plain rows out of scope dropped by numpy, only the rest read in Python; None when the
        block is not for that path (gateway.response.stream_select)."""
        selection = select_rows(block, crlf=lay.terminator == "\r\n", width=lay.width, scope=lay.fast_scope)
        if selection is None:
            return None
        picks = selection.picks
        if self.budget is not None and self.returned + picks.size > self.budget:
            return None  # near the budget: row by row, so the cut falls on the exact row
        self.seen += selection.plain
        raw = not lay.changes and lay.keep_all and lay.plain_out  # in-scope plain rows go out as they came
        if lay.id_index is None or len(self.ids) >= MAX_IDS:
            return self._merged(block, selection, raw, lay)
        rows = zip(
            selection.special[picks].tolist(),
            selection.starts[picks].tolist(),
            selection.ends[picks].tolist(),
            selection.content_ends[picks].tolist(),
        )
        # Until the audit line's ids are collected: strictly in row order.
        out: list[bytes] = []
        lines: list[str] = []
        for is_special, start, end, content_end in rows:
            if is_special:
                if lines:
                    out.append(self._plain(lines, lay).encode("utf-8"))
                    lines = []
                out.append(self._emit(list(strict_rows(utf8(block[start : end + 1]))), lay).encode("utf-8"))
            elif raw:
                self._count_raw(block[start:content_end], lay)
                out.append(block[start : end + 1])
            else:
                lines.append(block[start:content_end].decode("ascii"))
        if lines:
            out.append(self._plain(lines, lay).encode("utf-8"))
        return b"".join(out)

    def _merged(self, block: bytes, selection: Selection, raw: bool, lay: CsvLayout) -> bytes:
        """The block's output in row order, plain rows done in one batch (no ids left to collect):
        the special rows first (a bad one refuses the block before any row of it is counted), then
        the plain ones, then the special rows' output put back in its places."""
        picks, starts = selection.picks, selection.starts
        is_special = selection.special[picks]
        plain_rows, special_rows = picks[~is_special], picks[is_special]
        special: list[str] = []
        if special_rows.size:
            spans = zip(starts[special_rows].tolist(), (selection.ends[special_rows] + 1).tolist())
            special = self._special_rows([block[s:e] for s, e in spans], lay)
        # Plain rows are ASCII: sliced from one decoding of the block (latin-1: a byte is a character,
        # so the offsets hold; the special rows' text is taken from the csv reader, never from this).
        text = block.decode("latin-1")
        if raw:
            out = [text[s:e] for s, e in zip(starts[plain_rows].tolist(), (selection.ends[plain_rows] + 1).tolist())]
            self.returned += len(out)
        else:
            spans = zip(starts[plain_rows].tolist(), selection.content_ends[plain_rows].tolist())
            out = self._plain_each([text[s:c] for s, c in spans], lay)
        for at, row in zip(is_special.nonzero()[0].tolist(), special):  # ascending: each lands in its place
            out.insert(at, row)
        return "".join(out).encode("utf-8")

    def _special_rows(self, parts: list[bytes], lay: CsvLayout) -> list[str]:
        """Each special row's output ("" when out of scope), in order. A row whose bytes hold none
        of the values that put a row in scope cannot be in scope: those are only read, counted and
        checked (no Python per row); the others go through the whole filter."""
        probe = lay.scope_probe
        if probe is None or not parts:
            return self._special_each(parts, lay)
        if len(probe) == 1:
            (value,) = probe
            maybe = [value in part for part in parts]
        else:
            maybe = [any(value in part for value in probe) for part in parts]
        self._check_only([p for p, m in zip(parts, maybe) if not m], lay)
        done = iter(self._special_each([p for p, m in zip(parts, maybe) if m], lay))
        return [next(done) if m else "" for m in maybe]

    def _check_only(self, parts: list[bytes], lay: CsvLayout) -> None:
        """Rows out of scope: read strictly (as the buffered filter reads the whole table), counted,
        their widths checked, nothing written."""
        if not parts:
            return
        rows = list(strict_rows(utf8(b"".join(parts))))
        widths = set(map(len, rows))
        widths.discard(0)  # a blank line, as csv.reader reads it
        if widths - {lay.width}:
            bad = min(widths - {lay.width})
            raise unenforceable(f"CSV row has {bad} cells, header has {lay.width}")
        self.seen += len(rows) - rows.count([])

    def _special_each(self, parts: list[bytes], lay: CsvLayout) -> list[str]:
        """Special rows read by one csv.reader over them all; row by row when that does not give
        one row each (a lone CR splits a row in two)."""
        if not parts:
            return []
        rows = list(strict_rows(utf8(b"".join(parts))))
        if len(rows) == len(parts):
            return self._emit_each(rows, lay)
        return [self._emit(list(strict_rows(utf8(p))), lay) for p in parts]

    def _count_raw(self, line: bytes, lay: CsvLayout) -> None:
        self.returned += 1
        if lay.id_index is not None and len(self.ids) < MAX_IDS:
            cell = line.split(b",")[lay.id_index]
            if cell:
                self.ids.append(cell.decode("ascii"))

    def _plain(self, lines: list[str], lay: CsvLayout) -> str:
        return "".join(self._plain_each(lines, lay))

    def _plain_each(self, lines: list[str], lay: CsvLayout) -> list[str]:
        """Plain rows already counted, checked and in scope: ids, then masks and columns, written."""
        ids, id_index = self.ids, lay.id_index
        if id_index is not None and len(ids) < MAX_IDS:
            for line in lines[: MAX_IDS - len(ids)]:
                cell = line.split(",")[id_index]
                if cell:
                    ids.append(cell)
        self.returned += len(lines)
        if not lay.changes and lay.keep_all and lay.plain_out:
            term = lay.terminator
            return [line + term for line in lines]
        return lay.write_plain(lines)  # the hot loop of an export (gateway.response.stream_plain)

    def _rows(self, text: str, lay: CsvLayout) -> bytes:
        """Row by row: lines without quote or stray CR/LF split on commas (as csv.reader reads
        them), other lines grouped until their quotes balance and read by csv.reader."""
        term = lay.terminator
        crlf = term == "\r\n"
        out: list[str] = []
        group: list[str] = []
        quotes = 0
        lines = text.split(term)
        if lines and not lines[-1]:
            lines.pop()  # the block ends with a line end (the last row of a body may not)
        for line in lines:
            if group or '"' in line or "\r" in line or (crlf and "\n" in line):
                group.append(line)
                quotes += line.count('"')
                if quotes % 2:
                    continue  # a quoted cell goes on past this line end
                rows = list(strict_rows(term.join(group) + term))
                group.clear()
                quotes = 0
            elif not line:
                continue  # a blank line, as csv.reader reads it
            else:
                rows = [line.split(",")]
            out.append(self._emit(rows, lay))
            if self.cut:
                break
        else:
            if group:
                raise unenforceable("CSV body ends inside a quoted cell")
        return "".join(out).encode("utf-8")

    def _emit(self, rows: list[list[str]], lay: CsvLayout) -> str:
        return "".join(self._emit_each(rows, lay))

    def _emit_each(self, rows: Iterable[list[str]], lay: CsvLayout) -> list[str]:
        """Rows not yet counted nor checked: width, scope, budget, ids, masks, columns; each as
        written ("" for a row that does not go out). Stops at the row over the budget."""
        out: list[str] = []  # one entry a row: "" when it does not go out
        # quoted as the buffered filter's dump_csv does (a cell with a CR or LF always; '""' for one
        # empty cell); each row is one call of ``write``: straight into ``out``
        writerow = csv_row_writer(out.append, lay.terminator)
        width, fast, test, budget = lay.width, lay.in_scope, self.test, self.budget
        for cells in rows:
            if not cells:
                out.append("")
                continue  # a blank line, as csv.reader reads it
            if len(cells) != width:  # extra cells would belong to no column and escape the masks
                raise unenforceable(f"CSV row {self.seen + 2} has {len(cells)} cells, header has {width}")
            self.seen += 1
            if fast is not None:
                if not fast(cells):
                    out.append("")
                    continue
            elif test is not None and not test({name: cells[i] for name, i in lay.scope_columns}):
                out.append("")
                continue
            if budget is not None and self.returned >= budget:
                self.cut = True
                break
            self.returned += 1
            if lay.id_index is not None and len(self.ids) < MAX_IDS and cells[lay.id_index]:
                self.ids.append(cells[lay.id_index])
            for i, change in lay.changes:
                cells[i] = change(cells[i])
            writerow(cells if lay.keep_all else [cells[i] for i in lay.keep])
        return out
