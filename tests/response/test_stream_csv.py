"""The streamed CSV filter gives what the buffered filter gives, however the answer is cut into pieces."""

from __future__ import annotations

import gzip
import zlib

import pytest

from gateway.errors import ObligationUnenforceable
from gateway.model import Mask
from gateway.response.stream_csv import CsvStreamFilter
from gateway.response.stream_decode import StreamDecoder
from tests.response.factories import CUSTOMERS, endpoint, identity, obligations, run

CSV_EXPORT = endpoint(CUSTOMERS, ("$",), fmt="csv", action="export")
MASKED = obligations("own", Mask("complaints", "remove"), Mask("phone", "redact", 2), Mask("email", "hash"))

# Quoted commas, quotes, newlines (LF and CRLF) inside cells, an empty cell, non-ASCII text.
CSV = (
    b'id,name,"Phone Number",phone,email,owner_id,complaints\r\n'
    b'1,"Smith, John",x,0123456789,a@x.example,alice,"said ""no""\r\nthen left"\r\n'
    b"2,Ann,y,0987654321,b@x.example,bob,\r\n"
    b"3,Zo\xc3\xab,z,0555555555,c@x.example,alice,rude\r\n"
    b'4,"multi\nline",w,0111111111,d@x.example,alice,\r\n'
    b"5,Bo,v,0222222222,e@x.example,carol,x\r\n"
    b"6,Cy,u,0333333333,,alice,\r\n"
)


def stream(body: bytes, pieces: int, *, ob=MASKED, budget=None, max_pending=1 << 16, encoding=None) -> tuple:
    rows = CsvStreamFilter(CSV_EXPORT, ob, identity("alice"), max_pending=max_pending, budget=budget)
    decoder = StreamDecoder(encoding, 1 << 16)
    out = b""
    for i in range(0, len(body), pieces):
        for piece in decoder.feed(body[i : i + pieces]):
            out += rows.feed(piece)
    if not rows.cut:
        for piece in decoder.finish():
            out += rows.feed(piece)
        out += rows.finish()
    return out, rows


def buffered(body: bytes, ob=MASKED):
    return run(body, ep=CSV_EXPORT, ob=ob, who=identity("alice"), content_type="text/csv")


@pytest.mark.parametrize("pieces", [1, 2, 3, 7, 16, 61, 1 << 20])
def test_any_piece_size_gives_the_buffered_answer(pieces):
    expected = buffered(CSV)
    out, rows = stream(CSV, pieces)
    assert out == expected.body
    assert (rows.seen, rows.returned, tuple(rows.ids)) == (6, 4, ("1", "3", "4", "6"))
    assert frozenset(rows.fields_masked()) == expected.fields_masked


@pytest.mark.parametrize(
    "body",
    [
        CSV.replace(b"\r\n", b"\n"),  # LF line ends
        b"\xef\xbb\xbf" + CSV,  # a byte-order mark
        CSV.rstrip(b"\r\n"),  # no line end after the last row
        CSV.replace(b"\r\n2,", b"\r\n\r\n2,"),  # a blank line
        b"id,owner_id\n1,alice\n2,bob\n",  # nothing quoted at all: the split fast path throughout
    ],
)
def test_line_ends_bom_and_blank_lines_as_the_buffered_filter_reads_them(body):
    assert stream(body, 5)[0] == buffered(body).body


def test_scope_all_without_masks_counts_every_row():
    out, rows = stream(CSV, 9, ob=obligations("all"))
    assert (rows.seen, rows.returned) == (6, 6)
    assert out == buffered(CSV, obligations("all")).body


@pytest.mark.parametrize("encoding, compress", [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_compressed_answer_is_decoded_as_it_streams(encoding, compress):
    assert stream(compress(CSV), 3, encoding=encoding)[0] == buffered(CSV).body


def test_two_gzip_members_are_one_body():
    body = gzip.compress(CSV[:50]) + gzip.compress(CSV[50:])
    assert stream(body, 11, encoding="gzip")[0] == buffered(CSV).body


def test_a_zip_bomb_comes_out_in_bounded_pieces():
    decoder = StreamDecoder("gzip", 4096)
    sizes = [len(p) for p in decoder.feed(gzip.compress(b"\n" * 10_000_000))]
    assert max(sizes) <= 4096 and sum(sizes) == 10_000_000


@pytest.mark.parametrize("coding", ["br", "gzip, deflate", "compress"])
def test_codings_the_filter_cannot_read_are_refused(coding):
    with pytest.raises(ObligationUnenforceable):
        StreamDecoder(coding, 4096)


def test_truncated_gzip_is_refused_at_the_end():
    with pytest.raises(ObligationUnenforceable, match="truncated"):
        stream(gzip.compress(CSV)[:-10], 7, encoding="gzip")


@pytest.mark.parametrize(
    "bad, why",
    [
        (b"7,too,many,cells,x,alice,x,extra\r\n", "cells"),
        (b'7,"unclosed,x,0,a,alice,x\r\n', "CSV"),
        (b"7,\xff\xfe,x,0,a,alice,x\r\n", "UTF-8"),
    ],
)
def test_a_malformed_row_mid_stream_is_refused(bad, why):
    with pytest.raises(ObligationUnenforceable, match=why):
        stream(CSV + bad + b"8,Ok,x,0,a,alice,x\r\n", 13)


def test_a_stray_quote_in_a_plain_cell_is_refused_when_it_hides_the_row_ends():
    # RFC 4180 forbids a quote inside an unquoted cell; the buffered reader keeps it, but after it
    # the row-end search sees an open quote: the rows that follow are refused, never guessed.
    body = CSV + b'7,a"b,x,0,a,alice,x\r\n' + CSV.split(b"\r\n", 1)[1]
    with pytest.raises(ObligationUnenforceable):
        stream(body, 13)


def test_a_row_longer_than_the_buffer_is_refused():
    huge = b"7,Big,x,0," + b"a" * 5000 + b",alice,x\r\n"
    with pytest.raises(ObligationUnenforceable, match="longer than"):
        stream(CSV + huge, 1000, max_pending=4096)


def test_a_budget_stops_at_the_row_that_uses_it_up():
    out, rows = stream(CSV, 17, budget=2)
    assert rows.cut and (rows.returned, tuple(rows.ids)) == (2, ("1", "3"))
    assert out.count(b"\r\n") - out.count(b"then left") == 3  # the header and two rows, nothing more


def test_a_budget_the_answer_stays_within_does_not_cut():
    out, rows = stream(CSV, 17, budget=4)
    assert not rows.cut and out == buffered(CSV).body


def test_duplicate_header_is_refused():
    with pytest.raises(ObligationUnenforceable, match="repeats"):
        stream(b"id,id,owner_id\n1,2,alice\n", 4)


def many_rows(n: int) -> bytes:
    """Plain rows, quoted ones (commas, quotes, line breaks), non-ASCII ones and blank lines, mixed."""
    owners = ("alice", "bob", "carol")
    lines = [b"id,name,phone,email,owner_id,complaints\r\n"]
    for i in range(1, n + 1):
        name = f'"N {i}, ""q""\r\nx"' if i % 7 == 0 else (f"Zo\u00eb {i}" if i % 11 == 0 else f"N {i}")
        lines.append(f"{i},{name},01 23 {i:05d},c{i}@x.example,{owners[i % 3]},c{i}\r\n".encode())
        if i % 97 == 0:
            lines.append(b"\r\n")
    return b"".join(lines)


@pytest.mark.parametrize(
    "ob",
    [MASKED, obligations("all"), obligations("all", Mask("phone", "redact", 4)), obligations("team")],
    ids=["own-masked", "all", "all-redacted", "team"],
)
def test_thousands_of_mixed_rows_in_blocks_give_the_buffered_answer(ob):
    body = many_rows(3000)
    expected = buffered(body, ob)
    out, rows = stream(body, 4093, ob=ob)
    assert out == expected.body
    assert (rows.seen, rows.returned, tuple(rows.ids)) == (
        expected.records_seen,
        expected.records_returned,
        expected.record_ids[:200],
    )


@pytest.mark.parametrize("pieces", [3, 1 << 20])
def test_one_column_left_writes_an_empty_cell_as_quotes(pieces):
    body = b"id,owner_id,phone\r\n1,alice,x\r\n,alice,y\r\n3,alice,z\r\n" * 1
    ob = obligations("all", Mask("owner_id", "remove"), Mask("phone", "remove"))
    out, rows = stream(body, pieces, ob=ob)
    assert out == buffered(body, ob).body == b'id\r\n1\r\n""\r\n3\r\n'


@pytest.mark.parametrize("pieces", [5, 1 << 20])
def test_two_masks_on_one_column_apply_in_order_on_plain_and_quoted_rows(pieces):
    ob = obligations("own", Mask("phone", "redact", 4), Mask("phone", "hash"), Mask("email", "remove"))
    body = many_rows(500)
    out, _ = stream(body, pieces, ob=ob)
    assert out == buffered(body, ob).body
    assert b"hmac:" in out and b"@x.example" not in out


@pytest.mark.parametrize("pieces", [4093, 20011])
def test_a_quoted_row_out_of_scope_is_still_read_and_checked(pieces):
    # Once the audit line's ids are collected (200 rows), a quoted row whose bytes hold no "alice"
    # never reaches the masks; a wrong width or a bad quote in it still refuses the answer, as the
    # buffered reader would.
    body = many_rows(1000)
    for bad in (b'1001,"q, x",0,a,bob,x,extra\r\n', b'1001,"q" x,0,a,bob,x\r\n'):
        with pytest.raises(ObligationUnenforceable):
            stream(body + bad + body.split(b"\r\n", 1)[1], pieces)
    fine = body + b'1001,"q, x",0,a,bob,x\r\n' + body.split(b"\r\n", 1)[1]
    out, rows = stream(fine, pieces)
    expected = buffered(fine)
    assert out == expected.body and (rows.seen, rows.returned) == (expected.records_seen, expected.records_returned)


@pytest.mark.parametrize("pieces", [4093, 1 << 20])
def test_a_scope_value_holding_a_quote_is_found_in_quoted_cells(pieces):
    owners = (b'"a""b"', b"ab", b'"a""b, c"')
    body = b"id,owner_id,phone\r\n" + b"".join(b"%d,%s,x%d\r\n" % (i, owners[i % 3], i) for i in range(1, 1500))
    who = identity('a"b')
    rows = CsvStreamFilter(CSV_EXPORT, MASKED, who, max_pending=1 << 16)
    out = b"".join(rows.feed(body[i : i + pieces]) for i in range(0, len(body), pieces)) + rows.finish()
    assert out == run(body, ep=CSV_EXPORT, ob=MASKED, who=who, content_type="text/csv").body
    assert rows.returned == 499


def cr_body(term: bytes, rows: int = 1) -> bytes:
    """Cells holding a bare CR, a CRLF and an LF (quoted, as the CRM wrote them), beside plain rows;
    ``rows`` copies so that the block path (numpy selection, many rows) is taken too."""
    lines = [b"id,name,owner_id,phone"]
    for n in range(rows):
        i = 10 * n
        lines += [
            b'%d,"cr\rinside",alice,1' % (i + 1),
            b'%d,"crlf\r\ninside",alice,2' % (i + 2),
            b'%d,"lf\ninside",alice,3' % (i + 3),
            b"%d,plain,alice,4" % (i + 4),
            b'%d,"x\ry",bob,5' % (i + 5),
            b'%d,"trailing\r",alice,6' % (i + 6),
        ]
    return term.join(lines) + term


@pytest.mark.parametrize("term", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("pieces", [1, 5, 4093, 1 << 20])
@pytest.mark.parametrize("rows", [1, 400])
def test_a_cell_holding_a_bare_cr_is_quoted_streamed_and_buffered(term, pieces, rows):
    # csv.writer quotes only its own line terminator's characters: with LF line ends a bare CR went
    # out unquoted, and a spreadsheet reading the export splits the row there (an injected row).
    body = cr_body(term, rows)
    out, streamed = stream(body, pieces)
    expected = buffered(body)
    assert out == expected.body
    assert (
        (streamed.seen, streamed.returned) == (expected.records_seen, expected.records_returned) == (6 * rows, 5 * rows)
    )
    assert b'1,"cr\rinside",alice,*' + term in out and b'6,"trailing\r",alice,*' + term in out
    assert b'2,"crlf\r\ninside",alice,*' + term in out and b'3,"lf\ninside",alice,*' + term in out
    assert term + b"4,plain,alice,*" + term in out  # everything else as before: unquoted
    assert out.startswith(b"id,name,owner_id,phone" + term)


@pytest.mark.parametrize("term", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_a_header_cell_holding_a_cr_is_quoted(term):
    body = f'id,"na\rme",owner_id{term}1,a,alice{term}'.encode()
    ob = obligations("own")
    out, _ = stream(body, 3, ob=ob)
    assert out == buffered(body, ob).body == f'id,"na\rme",owner_id{term}1,a,alice{term}'.encode()
