"""The CRM's answer: what the filter cannot read is refused (502), never passed through unfiltered.

The stand-in misbehaves on purpose: encodings the filter cannot decode (stacked, br, zstd, corrupt,
zip bombs), content types that are not the catalogued format, bodies over the cap or shorter than
announced, an upstream that hangs, resets or closes mid-body, and a CRM that honours ``Range``.
Two callers: alice (scope ``own``, the body is filtered) and grace (scope ``all``, the body is only
counted -- it must still be readable, or records_read would be a lie).
"""

from __future__ import annotations

import gzip
import zlib
from datetime import datetime

import orjson
import pytest

from tests.adversarial.conftest import GRACE, bearer
from tests.adversarial.standin import CSV_BODY, RECORD, Reply
from tests.adversarial.wire import exchange, request
from tests.conftest import PARIS

ALICE = bearer("alice")
CALLERS = {"alice-filtered": ALICE, "grace-counted": GRACE}
PAGE = orjson.dumps(
    {
        "data": [RECORD, {**RECORD, "id": 2, "owner_id": "bob", "phone": "+86 21 5555 0000"}],
        "page": 1,
        "page_size": 50,
        "total": 2,
    }
)
JSON = [("Content-Type", "application/json")]


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


BAD_ENCODINGS = {
    "gzip-gzip": ("gzip, gzip", gz(gz(PAGE))),
    "gzip-br": ("gzip, br", gz(PAGE)),
    "br": ("br", PAGE),
    "zstd": ("zstd", PAGE),
    "compress": ("compress", PAGE),
    "unknown-token": ("x-custom", PAGE),
    "gzip-header-plain-body": ("gzip", PAGE),
    "deflate-garbage": ("deflate", b"\x78\x9c garbage"),
    "truncated-gzip": ("gzip", gz(PAGE)[:-12]),
    "gzip-trailing-garbage": ("gzip", gz(PAGE) + b"garbage"),
    "gzip-bomb": ("gzip", gz(b" " * (8 << 20))),
    "deflate-bomb": ("deflate", zlib.compress(b"[" * (8 << 20))),
}


@pytest.mark.parametrize("caller", CALLERS.values(), ids=CALLERS.keys())
@pytest.mark.parametrize(("coding", "body"), BAD_ENCODINGS.values(), ids=BAD_ENCODINGS.keys())
async def test_undecodable_encodings_are_refused(make_gw, standin, caller, coding, body):
    gw = await make_gw(limits={"max_response_body_bytes": 1 << 20})
    standin.reply = lambda seen: Reply(200, JSON + [("Content-Encoding", coding)], body)
    answer = await exchange(gw.port, request("/api/customers", caller))
    assert answer.status == 502 and b"obligation-unenforceable" in answer.body
    assert b"+86" not in answer.body


@pytest.mark.parametrize("coding", ["identity, gzip", "GZIP", "x-gzip", "gzip, identity"])
async def test_decodable_encodings_are_filtered(gw, standin, coding):
    standin.reply = lambda seen: Reply(200, JSON + [("Content-Encoding", coding)], gz(PAGE))
    answer = await exchange(gw.port, request("/api/customers", ALICE))
    assert answer.status == 200 and answer.header("Content-Encoding") is None
    assert [r["owner_id"] for r in orjson.loads(answer.body)["data"]] == ["alice"]


CONTENT_TYPES = [
    None,
    "text/html",
    "text/plain",
    "application/octet-stream",
    "application/json; charset=utf-16",
    "application/json; charset=iso-8859-1",
    "text/csv",
    "application/x-ndjson",
    "text/json",
    "application/javascript",
    "multipart/mixed; boundary=x",
]


@pytest.mark.parametrize("caller", CALLERS.values(), ids=CALLERS.keys())
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
async def test_non_json_content_types_on_scoped_resources_are_refused(gw, standin, caller, content_type):
    headers = [("Content-Type", content_type)] if content_type else []
    standin.reply = lambda seen: Reply(200, headers, PAGE)
    answer = await exchange(gw.port, request("/api/customers", caller))
    assert answer.status == 502 and b"+86" not in answer.body


async def test_json_endpoint_answering_csv_is_refused(gw, standin):
    standin.reply = lambda seen: Reply(200, [("Content-Type", "text/csv")], CSV_BODY)
    answer = await exchange(gw.port, request("/api/customers/1", ALICE))
    assert answer.status == 502


@pytest.mark.parametrize("caller", CALLERS.values(), ids=CALLERS.keys())
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_bodies_over_the_cap_are_refused(make_gw, standin, caller, framing):
    gw = await make_gw(limits={"max_response_body_bytes": 4096})
    big = orjson.dumps({"data": [RECORD] * 200})
    if framing == "chunked":
        raw = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (len(big[i : i + 1000]), big[i : i + 1000]) for i in range(0, len(big), 1000))
            + b"0\r\n\r\n"
        )
        standin.reply = lambda seen: Reply(raw=raw)
    else:
        standin.reply = lambda seen: Reply(200, JSON, big)
    answer = await exchange(gw.port, request("/api/customers", caller))
    assert answer.status == 502 and b"obligation-unenforceable" in answer.body


@pytest.mark.parametrize(
    ("name", "reply", "statuses"),
    [
        ("hang", Reply(action="hang"), {504}),
        ("reset", Reply(action="reset"), {502}),
        ("short-body", Reply(200, JSON, PAGE, action="short"), {502}),
        ("garbage-status-line", Reply(raw=b"HTTP/1.1 OK\r\n\r\n"), {502}),
        ("no-status-line", Reply(raw=b'{"data": []}'), {502}),
        ("close-before-answer", Reply(raw=b""), {502}),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
@pytest.mark.slow  # over a second
@pytest.mark.parametrize("caller", CALLERS.values(), ids=CALLERS.keys())
async def test_misbehaving_upstream_is_a_gateway_error_not_a_leak(make_gw, standin, name, reply, statuses, caller):
    gw = await make_gw(total_timeout=1)
    standin.reply = lambda seen: reply
    answer = await exchange(gw.port, request("/api/customers", caller))
    assert answer.status in statuses, (name, answer.status, answer.body)
    assert b"+86" not in answer.body and b"request_id" in answer.body


async def test_deeply_nested_json_is_refused(gw, standin):
    standin.reply = lambda seen: Reply(200, JSON, b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    answer = await exchange(gw.port, request("/api/customers", ALICE))
    assert answer.status == 502


@pytest.mark.parametrize("body", [b'{"data": [1, 2]}', b'{"data": {"id": 1}}', b'{"rows": []}', b"[]", b"null"])
async def test_records_not_where_the_catalogue_says_are_refused(gw, standin, body):
    standin.reply = lambda seen: Reply(200, JSON, body)
    answer = await exchange(gw.port, request("/api/customers", ALICE))
    assert answer.status == 502


async def test_records_in_an_error_answer_are_not_passed_unfiltered(gw, standin):
    bobs = orjson.dumps({**RECORD, "id": 2, "owner_id": "bob", "phone": "+86 21 5555 0000"})
    standin.reply = lambda seen: Reply(409, JSON, bobs)
    answer = await exchange(gw.port, request("/api/customers/2", ALICE))
    assert b"+86" not in answer.body


# --- Range: a partial CSV whose "header" is a data row would escape the column masks ----------------

SUPPORT_EXPORT = """\
format: crmgw.rules/v1
rules:
  - id: support-export-masked
    title: Support agents export customers with phones masked
    match: {operations: [customers.export]}
    allow:
      role: {in: [support_agent]}
    data_scope: {support_agent: all}
    mask:
      - {field: phone, op: redact, keep_last: 4}
"""
TWO_ROWS = CSV_BODY + b"2,Customer 2,c2@client.example,+86 21 5555 0000,bob,east,sales,apac,shanghai,900,none\r\n"


def honours_range(seen):
    ranges = seen.headers("Range")
    if ranges:
        start = int(ranges[0].split("=")[1].split("-")[0])
        return Reply(
            206, [("Content-Type", "text/csv"), ("Content-Range", f"bytes {start}-/{len(TWO_ROWS)}")], TWO_ROWS[start:]
        )
    return Reply(200, [("Content-Type", "text/csv")], TWO_ROWS)


@pytest.mark.parametrize("headers", [{"Range": "bytes={n}-"}, {"Range": "bytes={n}-", "If-Range": "x"}])
async def test_range_cannot_turn_a_data_row_into_the_csv_header(make_gw, standin, rules_copy, headers):
    (rules_copy / "policies" / "50-support-export.yaml").write_text(SUPPORT_EXPORT)
    gw = await make_gw(rules=rules_copy)
    standin.reply = honours_range
    offset = TWO_ROWS.index(b"\r\n") + 2
    filled = {k: v.format(n=offset) for k, v in headers.items()}
    answer = await exchange(gw.port, request("/api/customers/export.csv", {**bearer("frank"), **filled}))
    assert answer.status in (200, 502)
    assert b"+86 21 5555 0000" not in answer.body and b"+33 1 23 45 67 89" not in answer.body
    assert standin.seen[0].headers("Range") == []


async def test_export_grant_applies_scope_to_csv_rows(make_gw, standin, clock):
    clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=PARIS))  # alice's Q1 export grant is active
    gw = await make_gw()
    standin.reply = lambda seen: Reply(200, [("Content-Type", "text/csv")], TWO_ROWS)
    answer = await exchange(gw.port, request("/api/customers/export.csv", ALICE))
    assert answer.status == 200
    assert b"bob" not in answer.body and b"alice" in answer.body
