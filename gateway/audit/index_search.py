"""The console's audit search: the index when it is up to date, the bounded scan when it is not.

The index (gateway.audit.index) is fed by a background job (gateway.audit.index_job) and may lag a
second behind the log. Before answering, a search reads the last few megabytes itself (a quick
catch-up that gives up at once when another process is indexing); an index further behind than
that (never built, or being built) is not waited for: the first page then comes from the bounded
scan of gateway.audit.search, as before the index existed, and says so.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from gateway.audit.index import AuditIndex, IndexPage
from gateway.audit.search import AuditQuery, SearchResult, search

log = logging.getLogger("crmgw.audit.index")

QUICK_BYTES = 4 * 1024 * 1024  # read by the search itself (~4,000 lines, a few tens of ms)
QUICK_LINES = 10_000


def search_page(
    path: Path,
    query: AuditQuery,
    *,
    limit: int,
    before: int | None = None,
    max_bytes: int,
    quick_bytes: int = QUICK_BYTES,
) -> SearchResult:
    """One page of matches, newest first, older than the cursor ``before`` (``next_before`` of the
    previous page)."""
    index = AuditIndex(path)
    page: IndexPage | None = None
    try:
        page = index.query(query, limit=limit, before=before)
        if 0 < page.behind_bytes <= quick_bytes:
            # The newest lines are not indexed yet: index them now, or -- while the indexing process
            # holds the index -- let the files answer, never a page missing them.
            page = index.query(query, limit=limit, before=before) if _quick_catch_up(index) else None
    except (sqlite3.Error, OSError) as exc:  # a damaged or unreadable index: the files still answer
        log.warning("audit index unusable (%s); searching the files", exc)
        page = None
    if page is None or (page.behind_bytes > quick_bytes and before is None):
        found = search(path, query, limit=limit, max_bytes=max_bytes)
        found.behind_bytes = page.behind_bytes if page is not None else 0
        return found
    return SearchResult(
        records=page.records,
        files=[],
        next_before=page.positions[-1] if page.more else None,
        via="index",
        behind_bytes=page.behind_bytes,
    )


def _quick_catch_up(index: AuditIndex) -> bool:
    """Index the last few lines now, unless another process is at it (never wait for it)."""
    conn = index.connect(busy_ms=0)
    try:
        index.catch_up(batch=QUICK_LINES, conn=conn)
        return True
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return False
        raise
    finally:
        conn.close()
