"""CSV export of audit records: every cell a spreadsheet would run as a formula starts with '."""

from __future__ import annotations

import csv
import io

import pytest

from gateway.audit.index_csv import COLUMNS, cell, to_csv


@pytest.mark.parametrize(
    "value,expected",
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("a=1", "a=1"),
        (-3, "'-3"),
        (None, ""),
        (True, "true"),
        (["r1", "=x"], "r1 =x"),
        (["=x", "r1"], "'=x r1"),
    ],
)
def test_cells(value, expected):
    assert cell(value) == expected


def test_a_record_becomes_one_row_under_the_header():
    text = to_csv([{"user": "=cmd", "path": '/a,"b"', "rules": ["r1", "r2"], "latency_ms": 1.5}])
    header, row = list(csv.reader(io.StringIO(text)))
    assert header == list(COLUMNS)
    got = dict(zip(header, row, strict=True))
    assert (got["user"], got["path"], got["rules"], got["latency_ms"], got["team"]) == (
        "'=cmd",
        '/a,"b"',
        "r1 r2",
        "1.5",
        "",
    )
