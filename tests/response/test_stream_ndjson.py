"""The streamed NDJSON filter gives, line by line, what the buffered JSON filter gives for the same
records, however the answer is cut into pieces; what it cannot read is refused."""

from __future__ import annotations

import dataclasses
import gzip

import orjson
import pytest

from gateway.declared import Aggregate, AnswerContract, MaxRecords
from gateway.errors import ObligationUnenforceable
from gateway.model import Mask, Resource, ScopeField
from gateway.response.stream_decode import StreamDecoder
from gateway.response.stream_ndjson import NdjsonStreamFilter
from tests.response.factories import CUSTOMERS, customer, endpoint, identity, obligations, run

NDJSON_EXPORT = endpoint(CUSTOMERS, ("$",), fmt="ndjson", action="export", answer=AnswerContract())
AS_JSON_LIST = endpoint(CUSTOMERS, ("data[]",), action="export", answer=AnswerContract())
MASKED = obligations("own", Mask("complaints", "remove"), Mask("phone", "redact", 2), Mask("email", "hash"))

RECORDS = [
    customer(1, "alice", name='Smith, "John"\nJr', notes={"text": "é\u2028x"}),
    customer(2, "bob"),
    customer(3, "alice", phone=None, tags=["a", "b"]),
    customer(4, "carol"),
    customer(5, "alice", email=12345, id="5"),
    customer(6, "alice", complaints=None, phone="12"),
    customer(7, "bob"),
]
NDJSON = b"".join(orjson.dumps(r) + b"\n" for r in RECORDS)


def stream(body: bytes, pieces: int, *, ob=MASKED, budget=None, max_pending=1 << 16, encoding=None, ep=NDJSON_EXPORT):
    lines = NdjsonStreamFilter(ep, ob, identity("alice"), max_pending=max_pending, budget=budget)
    decoder = StreamDecoder(encoding, 1 << 16)
    out = b""
    for i in range(0, len(body), pieces):
        for piece in decoder.feed(body[i : i + pieces]):
            out += lines.feed(piece)
    if not lines.cut:
        for piece in decoder.finish():
            out += lines.feed(piece)
        out += lines.finish()
    return out, lines


def buffered(records, ob=MASKED, ep=AS_JSON_LIST):
    return run({"data": records}, ep=ep, ob=ob, who=identity("alice"))


def parsed(body: bytes) -> list:
    assert body == b"" or body.endswith(b"\n")
    return [orjson.loads(line) for line in body.splitlines()]


@pytest.mark.parametrize("pieces", [1, 2, 3, 7, 16, 61, 1 << 20])
def test_any_piece_size_gives_the_buffered_filters_records(pieces):
    expected = buffered(RECORDS)
    out, lines = stream(NDJSON, pieces)
    assert parsed(out) == orjson.loads(expected.body)["data"]
    assert (lines.seen, lines.returned, tuple(lines.ids)) == (7, 4, expected.record_ids) == (7, 4, ("1", "3", "5", "6"))
    assert frozenset(lines.fields_masked()) == expected.fields_masked == {"complaints", "email", "phone"}


def test_declared_fields_trim_every_line_as_the_buffered_filter_does():
    narrow = dataclasses.replace(CUSTOMERS, fields=frozenset({"id", "name", "owner_id", "phone"}))
    ep, as_list = (dataclasses.replace(e, resource=narrow) for e in (NDJSON_EXPORT, AS_JSON_LIST))
    out, _ = stream(NDJSON, 5, ep=ep)
    assert parsed(out) == orjson.loads(buffered(RECORDS, ep=as_list).body)["data"]
    assert set(parsed(out)[0]) == {"id", "name", "owner_id", "phone"}


def test_a_nested_scope_field_and_scope_all():
    contacts = Resource("contacts", scope_fields={"own": ScopeField("owner.id", "user")})
    records = [{"id": i, "owner": {"id": "alice" if i % 3 else "bob"}} for i in range(10)]
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    ep, as_list = (dataclasses.replace(e, resource=contacts) for e in (NDJSON_EXPORT, AS_JSON_LIST))
    out, lines = stream(body, 4, ob=obligations("own"), ep=ep)
    assert parsed(out) == orjson.loads(buffered(records, obligations("own"), as_list).body)["data"]
    assert lines.returned == 6
    everything, lines = stream(body, 4, ob=obligations("all"), ep=ep)
    assert parsed(everything) == records and (lines.seen, lines.returned) == (10, 10)


@pytest.mark.parametrize(
    "body",
    [
        NDJSON.replace(b"\n", b"\r\n"),  # CRLF line ends
        NDJSON.rstrip(b"\n"),  # no line end after the last record
        NDJSON.replace(b"\n", b"\n\n  \n", 2),  # blank lines
    ],
)
def test_line_ends_and_blank_lines(body):
    assert parsed(stream(body, 5)[0]) == orjson.loads(buffered(RECORDS).body)["data"]


def test_compressed_answer_is_decoded_as_it_streams():
    assert stream(gzip.compress(NDJSON), 3, encoding="gzip")[0] == stream(NDJSON, 1 << 20)[0]


def test_the_budget_cuts_at_the_record_that_crosses_it():
    out, lines = stream(NDJSON, 1 << 20, budget=2)
    assert [r["id"] for r in parsed(out)] == [1, 3] and lines.cut
    assert (lines.seen, lines.returned) == (5, 2)  # record 5 (alice's third) read, not sent
    whole, lines = stream(NDJSON, 7, budget=4)  # exactly the budget: complete, not cut
    assert len(parsed(whole)) == 4 and not lines.cut


@pytest.mark.parametrize(
    "bad, reason",
    [
        (b'{"id": 9, "owner_id": "alice"\n', "not valid JSON"),
        (b'[{"id": 9, "owner_id": "alice"}]\n', "not a JSON object"),
        (b'"alice"\n', "not a JSON object"),
        (b'{"id": 9, "owner_id": "al\xffice"}\n', "not valid JSON"),  # not UTF-8
        (b'{"id": 9} {"id": 10}\n', "not valid JSON"),  # two values on one line
    ],
)
@pytest.mark.parametrize("pieces", [3, 1 << 20])
def test_a_malformed_line_is_refused_wherever_it_falls(bad, reason, pieces):
    with pytest.raises(ObligationUnenforceable) as info:
        stream(NDJSON + bad + NDJSON, pieces)
    assert reason in info.value.detail


def test_a_body_ending_inside_a_record_is_refused():
    with pytest.raises(ObligationUnenforceable):
        stream(NDJSON + b'{"id": 9, "owner', 4)


def test_a_line_longer_than_the_buffer_is_refused():
    long = orjson.dumps(customer(9, notes="x" * 5000)) + b"\n"
    with pytest.raises(ObligationUnenforceable, match="longer than 1024"):
        stream(NDJSON + long, 512, max_pending=1024)


@pytest.mark.parametrize(
    "contract",
    [
        AnswerContract(aggregates=(Aggregate("total", "count"),)),
        AnswerContract(metadata=("page",)),
        AnswerContract(max_records=MaxRecords(10, "truncate")),
    ],
)
def test_an_answer_contract_beyond_the_records_is_refused_before_anything_is_sent(contract):
    with pytest.raises(ObligationUnenforceable):
        stream(NDJSON, 5, ep=dataclasses.replace(NDJSON_EXPORT, answer=contract))


def test_the_buffered_path_reads_ndjson_as_the_stream_does():
    """apply_obligations on an ndjson endpoint (an HTTP/1.0 client, a restricted caller's answer)."""
    result = run(NDJSON, ep=NDJSON_EXPORT, ob=MASKED, who=identity("alice"), content_type="application/x-ndjson")
    out, lines = stream(NDJSON, 7)
    assert result.body == out and (result.records_seen, result.records_returned) == (7, 4)
    assert result.record_ids == ("1", "3", "5", "6")
    with pytest.raises(ObligationUnenforceable):  # the media type is checked
        run(NDJSON, ep=NDJSON_EXPORT, ob=MASKED, who=identity("alice"), content_type="application/json")
