"""Which rows of a CSV block need Python at all: found with numpy over the block's bytes.

A streamed export is mostly plain rows (no quote, ASCII, the right line end): for those the row
boundaries, the cell count and the scope column can be read from byte positions, so a row the
caller may not see costs no Python at all. What comes back, in row order, is the rows that need
work: the plain rows in scope, and the *special* rows (a quote, non-ASCII text, a stray CR or a
line end other than the header's), which the caller reads with the csv module as before.

    row ends   LFs after an even number of quotes (a quoted cell may hold line ends)
    plain      no quote, no byte >= 0x80, no CR but the CRLF line end's, not blank
    width      a plain row must have exactly width - 1 commas, else the block is refused
    scope      (column, wanted values) pairs: a plain row is in scope when a cell equals one

``None`` means "not for this block": it does not end with a row end (the last one of a body).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from gateway.response.formats import unenforceable

if TYPE_CHECKING:
    import numpy.typing as npt

    Ints = npt.NDArray[Any]


@dataclasses.dataclass(slots=True)
class Selection:
    plain: int  # plain rows (counted as seen)
    picks: Ints  # row numbers to process in Python, in order: plain rows in scope and special rows
    special: npt.NDArray[Any]
    starts: Ints  # first byte of each row
    ends: Ints  # the row's LF (its last byte)
    content_ends: Ints  # where its cells end (before CRLF / LF)


def select_rows(
    block: bytes, *, crlf: bool, width: int, scope: list[tuple[int, frozenset[str]]] | None
) -> Selection | None:
    import numpy as np  # on first use: a gateway that streams no CSV never loads numpy (start-up time)

    arr = np.frombuffer(block, dtype=np.uint8)
    n = arr.size
    if n == 0 or arr[-1] != 10:
        return None
    nl = np.flatnonzero(arr == 10)
    quotes = np.flatnonzero(arr == 34)
    ends = nl[(np.searchsorted(quotes, nl) & 1) == 0] if quotes.size else nl
    if not ends.size:
        return None  # one quoted cell fills the block: the row-by-row path refuses or reads it
    starts = np.empty(ends.size, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    special = np.zeros(ends.size, dtype=bool)
    if quotes.size:
        special[np.searchsorted(ends, quotes)] = True
    high = None if block.isascii() else np.flatnonzero(arr >= 128)  # isascii: one fast pass, no array
    if high is not None and high.size:
        special[np.searchsorted(ends, high)] = True
    cr = np.flatnonzero(arr == 13)
    if crlf:
        content_ends = ends - 1
        special |= (arr[np.maximum(content_ends, 0)] != 13) | (content_ends < starts)
        if cr.size:  # a CR that does not end a line
            special[np.searchsorted(ends, cr[arr[np.minimum(cr + 1, n - 1)] != 10])] = True
    else:
        content_ends = ends
        if cr.size:
            special[np.searchsorted(ends, cr)] = True
    plain = ~special & (content_ends > starts)
    commas = np.flatnonzero(arr == 44)
    first = np.searchsorted(commas, starts)
    cells = np.searchsorted(commas, content_ends) - first + 1
    bad = np.flatnonzero(plain & (cells != width))
    if bad.size:
        row = int(bad[0])
        raise unenforceable(f"CSV row has {int(cells[row])} cells, header has {width}")
    if scope is None:
        chosen = plain
    else:
        chosen = np.zeros(ends.size, dtype=bool)
        rows = np.flatnonzero(plain)
        for column, wanted in scope:
            cell_starts = starts[rows] if column == 0 else commas[first[rows] + column - 1] + 1
            cell_ends = content_ends[rows] if column == width - 1 else commas[first[rows] + column]
            lengths = cell_ends - cell_starts
            for value in wanted:
                want = np.frombuffer(value.encode("utf-8"), dtype=np.uint8)
                same_length = np.flatnonzero(lengths == want.size)
                if not same_length.size or not want.size:
                    continue
                at = cell_starts[same_length, None] + np.arange(want.size)
                chosen[rows[same_length[(arr[at] == want).all(axis=1)]]] = True
    return Selection(int(plain.sum()), np.flatnonzero(chosen | special), special, starts, ends, content_ends)
