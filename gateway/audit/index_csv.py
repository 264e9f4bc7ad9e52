"""Audit records as CSV for an analyst's spreadsheet, safe against formula injection.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheets skip before looking for one) is run as a formula by Excel, LibreOffice and Google
Sheets: an attacker controls the path, the user agent and the query of the requests they send, so
such a cell is prefixed with ``'`` (OWASP's advice), which the spreadsheet shows as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

COLUMNS = (
    "time",
    "decision_id",
    "user",
    "roles",
    "team",
    "auth",
    "mfa",
    "client_ip",
    "country",
    "method",
    "path",
    "operation",
    "resource_id",
    "effect",
    "reason",
    "rules",
    "reasons",
    "status",
    "upstream_status",
    "records_seen",
    "records_returned",
    "fields_masked",
    "user_agent",
    "latency_ms",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """The text of one cell: lists joined with spaces, None empty, formulas defused."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | tuple):
        text = " ".join(str(v) for v in value)
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(records: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow([cell(record.get(c)) for c in COLUMNS])
    return out.getvalue()
