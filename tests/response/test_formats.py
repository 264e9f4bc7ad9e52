"""Decoding, content types and parsing of CRM response bodies."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from gateway.errors import ObligationUnenforceable
from gateway.response.formats import check_media_type, decode_content, dump_csv, load_csv, load_json

PLAIN = b'{"data": [{"id": 1, "owner_id": "alice"}], "page": 1}' * 20
LIMIT = 1 << 20


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    "encoding, body",
    [
        (None, PLAIN),
        ("", PLAIN),
        ("identity", PLAIN),
        ("gzip", gzip.compress(PLAIN, mtime=0)),
        ("x-gzip", gzip.compress(PLAIN, mtime=0)),
        ("GZIP", gzip.compress(PLAIN, mtime=0)),
        ("identity, gzip", gzip.compress(PLAIN, mtime=0)),
        ("deflate", zlib.compress(PLAIN)),  # zlib-wrapped, as RFC 9110 says
        ("deflate", raw_deflate(PLAIN)),  # raw, as some servers send it
        ("gzip", gzip.compress(PLAIN[:500], mtime=0) + gzip.compress(PLAIN[500:], mtime=0)),  # two gzip members
    ],
)
def test_decodes_supported_encodings(encoding, body):
    assert decode_content(body, encoding, LIMIT) == PLAIN


@pytest.mark.parametrize("encoding", ["br", "compress", "zstd", "gzip, br", "gzip, gzip", "deflate, gzip", "bogus"])
def test_refuses_other_encodings(encoding):
    with pytest.raises(ObligationUnenforceable):
        decode_content(gzip.compress(PLAIN, mtime=0), encoding, LIMIT)


@pytest.mark.parametrize(
    "encoding, body",
    [
        ("gzip", b"not gzip at all"),
        ("gzip", gzip.compress(PLAIN, mtime=0)[:-12]),  # truncated
        ("gzip", gzip.compress(PLAIN, mtime=0) + b"trailing"),
        ("deflate", zlib.compress(PLAIN) + b"trailing"),
        ("deflate", b"\x00\x01\x02\x03"),
    ],
)
def test_refuses_corrupt_compressed_bodies(encoding, body):
    with pytest.raises(ObligationUnenforceable):
        decode_content(body, encoding, LIMIT)


@pytest.mark.parametrize("encoding, compress", [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_zip_bomb_is_refused(encoding, compress):
    bomb = compress(b"\0" * (20 * LIMIT))  # ~20 KB that inflate to 20 MB
    assert len(bomb) < LIMIT // 10
    with pytest.raises(ObligationUnenforceable, match="exceeds"):
        decode_content(bomb, encoding, LIMIT)


def gzip_bomb(megabytes: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * (1 << 20)
    return b"".join([*(c.compress(zeros) for _ in range(megabytes)), c.flush()])


def test_zip_bomb_is_never_inflated_past_the_cap():
    bomb = gzip_bomb(64)
    tracemalloc.start()
    try:
        with pytest.raises(ObligationUnenforceable):
            decode_content(bomb, "gzip", LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * LIMIT  # an unbounded inflate would have allocated 64 MB


def test_body_at_the_cap_is_accepted_and_one_byte_more_refused():
    assert decode_content(gzip.compress(b"x" * 100, mtime=0), "gzip", 100) == b"x" * 100
    with pytest.raises(ObligationUnenforceable):
        decode_content(gzip.compress(b"x" * 101, mtime=0), "gzip", 100)


def test_plain_body_over_the_cap_is_refused():
    with pytest.raises(ObligationUnenforceable):
        decode_content(b"x" * 101, None, 100)


def test_empty_body_needs_no_decoding():
    assert decode_content(b"", "br", LIMIT) == b""


@pytest.mark.parametrize(
    "content_type, fmt",
    [
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ('Application/JSON;charset="UTF-8"', "json"),
        ("application/vnd.api+json", "json"),
        ("text/csv", "csv"),
        ("text/csv; charset=utf-8; header=present", "csv"),
    ],
)
def test_accepted_content_types(content_type, fmt):
    check_media_type(content_type, fmt)


@pytest.mark.parametrize(
    "content_type, fmt",
    [
        (None, "json"),
        ("", "json"),
        ("text/html", "json"),
        ("text/csv", "json"),
        ("application/json", "csv"),
        ("text/plain", "csv"),
        ("application/json; charset=iso-8859-1", "json"),
        ("text/csv; charset=utf-16", "csv"),
        ("application/json", "xml"),
    ],
)
def test_refused_content_types(content_type, fmt):
    with pytest.raises(ObligationUnenforceable):
        check_media_type(content_type, fmt)


@pytest.mark.parametrize("body", [b"{", b"not json", b'{"a": 1} trailing', b"\xef\xbb\xbf{}", b'{"a": "\xff"}'])
def test_bad_json_is_unenforceable(body):
    with pytest.raises(ObligationUnenforceable):
        load_json(body)


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_csv_round_trip_keeps_line_terminator_and_quoting(newline):
    text = newline.join(["id,name,notes", '1,"Smith, John","said ""hi""\nthen left"', "2,Ann,"]) + newline
    table = load_csv(text.encode())
    assert table.columns == ["id", "name", "notes"]
    assert table.rows[0] == {"id": "1", "name": "Smith, John", "notes": 'said "hi"\nthen left'}
    assert dump_csv(table) == text.encode()


def test_csv_byte_order_mark_is_kept():
    body = "\ufeffid,name\r\n1,Ann\r\n".encode()
    table = load_csv(body)
    assert table.columns == ["id", "name"]
    assert dump_csv(table) == body


@pytest.mark.parametrize(
    "body",
    [
        b"",  # no header
        b"id,name\r\n1,Ann,extra\r\n",  # a cell outside every column
        b"id,name\r\n1\r\n",
        b"id,id\r\n1,2\r\n",  # ambiguous column
        "id,name\r\n1,Ann\r\n".encode("utf-16"),
        b"id,name\r\n1,\xe9\r\n",  # latin-1, not utf-8
        b'id,name\r\n1,"unterminated\r\n',
    ],
)
def test_bad_csv_is_unenforceable(body):
    with pytest.raises(ObligationUnenforceable):
        load_csv(body)


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_csv_cell_holding_a_bare_cr_is_written_quoted(newline):
    # With LF line ends csv.writer alone writes "a\rb" unquoted: a spreadsheet splits the row there.
    text = newline.join(["id,notes", '1,"a\rb"', '2,"\r"', "3,plain", '4,"x\r\ny"']) + newline
    table = load_csv(text.encode())
    assert table.rows[0]["notes"] == "a\rb" and table.rows[1]["notes"] == "\r"
    assert dump_csv(table) == text.encode()
