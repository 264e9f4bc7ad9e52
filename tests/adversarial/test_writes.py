"""Scoped writes: a body the gateway and the CRM could read differently is refused; out-of-scope
targets are refused before the write is forwarded.

alice (scope ``own``) and dave (sales manager, scope ``team`` = east) write; the stand-in answers
the gateway's look-up GETs with records of the owner/team the test chooses.
"""

from __future__ import annotations

import gzip

import pytest

from tests.adversarial.conftest import bearer
from tests.adversarial.standin import RECORD, default_reply, json_reply
from tests.adversarial.wire import exchange, request

ALICE, DAVE = bearer("alice"), bearer("dave")
JSON = {"Content-Type": "application/json"}


def writes_seen(standin) -> list:
    return [s for s in standin.seen if s.method != "GET"]


BAD_BODIES = {
    "owner-other": (b'{"owner_id": "bob"}', JSON, 403),
    "owner-escaped-key": (b'{"owner\\u005fid": "bob"}', JSON, 403),
    "owner-trailing-space": (b'{"owner_id": "alice "}', JSON, 403),
    "owner-list": (b'{"owner_id": ["alice", "bob"]}', JSON, 403),
    "owner-number-like": (b'{"owner_id": 0}', JSON, 403),
    "duplicate-owner-last-mine": (b'{"owner_id": "bob", "owner_id": "alice"}', JSON, 400),
    "duplicate-owner-first-mine": (b'{"owner_id": "alice", "owner_id": "bob"}', JSON, 400),
    "duplicate-nested": (b'{"name": "x", "meta": {"a": 1, "a": 2}, "owner_id": "alice"}', JSON, 400),
    "text-plain": (b'{"owner_id": "bob"}', {"Content-Type": "text/plain"}, 415),
    "no-content-type": (b'{"owner_id": "bob"}', {}, 415),
    # media types the endpoint does not declare: 415 before anything is read as a record
    "form": (b"owner_id=bob&name=x", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    "multipart": (
        b"--b\r\nContent-Disposition: form-data; name=owner_id\r\n\r\nbob\r\n--b--\r\n",
        {"Content-Type": "multipart/form-data; boundary=b"},
        415,
    ),
    "json-list": (b'[{"owner_id": "bob"}]', JSON, 400),
    "json-patch": (
        b'[{"op": "replace", "path": "/owner_id", "value": "bob"}]',
        {"Content-Type": "application/json-patch+json"},
        400,
    ),
    # aiohttp's server inflates a gzip request body itself: the scope check reads the real owner.
    "gzip-encoded": (gzip.compress(b'{"owner_id": "bob"}', mtime=0), {**JSON, "Content-Encoding": "gzip"}, 403),
    "double-gzip": (
        gzip.compress(gzip.compress(b'{"owner_id": "bob"}', mtime=0), mtime=0),
        {**JSON, "Content-Encoding": "gzip"},
        400,
    ),
    # an encoding aiohttp does not know is not inflated: the bytes are read as they are
    "unknown-encoding": (b'{"owner_id": "bob"}', {**JSON, "Content-Encoding": "x-custom"}, 403),
    "utf16": ('{"owner_id": "bob"}'.encode("utf-16"), {"Content-Type": "application/json; charset=utf-16"}, 400),
    "bom": (b'\xef\xbb\xbf{"owner_id": "bob"}', JSON, 400),
    "nan": (b'{"owner_id": "alice", "quote_price": NaN}', JSON, 400),
    "trailing-garbage": (b'{"owner_id": "alice"} {"owner_id": "bob"}', JSON, 400),
}


@pytest.mark.parametrize(
    "method_target",
    [("POST", "/api/customers"), ("PUT", "/api/customers/1"), ("PATCH", "/api/customers/1")],
    ids=["create", "put", "patch"],
)
@pytest.mark.parametrize(("body", "headers", "status"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_scoped_write_bodies_are_refused_unless_unambiguous(gw, standin, method_target, body, headers, status):
    method, target = method_target
    answer = await exchange(gw.port, request(target, {**ALICE, **headers}, method=method, body=body))
    assert answer.status == status, answer.body
    assert writes_seen(standin) == []


@pytest.mark.parametrize("body", [b'{"name": "x"}', b'{"name": "x", "owner_id": "alice"}', b"{}"])
async def test_scoped_write_in_scope_is_forwarded_unchanged(gw, standin, body):
    answer = await exchange(gw.port, request("/api/customers/1", {**ALICE, **JSON}, method="PUT", body=body))
    assert answer.status == 200
    (write,) = writes_seen(standin)
    assert write.body == body


def team_of_id(seen):
    if seen.method == "GET" and seen.path.startswith("/api/customers/"):
        cid = seen.path.rsplit("/", 1)[1]
        team = "west" if cid == "2" else "east"
        return json_reply({**RECORD, "id": int(cid) if cid.isdigit() else cid, "team": team})
    return default_reply(seen)


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("DELETE", "/api/customers/2", b""),
        ("PUT", "/api/customers/2", b'{"name": "x"}'),
        ("POST", "/api/customers/bulk-delete", b'{"ids": [1, 2, 3]}'),
        ("POST", "/api/customers/bulk-delete", b'{"ids": [1, "2"]}'),
        ("POST", "/api/customers/bulk-delete", b'{"ids": ["1/../2"]}'),
        ("POST", "/api/customers/bulk-delete", b'{"ids": [".."]}'),
        ("POST", "/api/customers/bulk-delete", b'{"ids": [1], "ids": [2]}'),
        ("POST", "/api/customers/bulk-delete", b'{"ids": [true]}'),
        ("POST", "/api/customers/bulk-delete", b'{"ids": []}'),
        ("POST", "/api/customers/bulk-delete", b'{"ids": [1, null]}'),
    ],
)
async def test_out_of_scope_targets_are_refused_before_the_write(gw, standin, method, target, body):
    standin.reply = team_of_id
    answer = await exchange(gw.port, request(target, {**DAVE, **JSON}, method=method, body=body))
    assert answer.status in (400, 403, 404), answer.body
    assert writes_seen(standin) == []
    for lookup in standin.seen:
        assert lookup.path.count("/") == 3 and ".." not in lookup.path


async def test_in_scope_bulk_delete_is_forwarded(gw, standin):
    standin.reply = team_of_id
    body = b'{"ids": [1, 3]}'
    answer = await exchange(gw.port, request("/api/customers/bulk-delete", {**DAVE, **JSON}, method="POST", body=body))
    assert answer.status == 200
    assert [s.path for s in writes_seen(standin)] == ["/api/customers/bulk-delete"]
    assert writes_seen(standin)[0].body == body


@pytest.mark.parametrize(
    ("body", "encoding", "read_by_gateway"),
    [
        (gzip.compress(b'{"name": "x"}', mtime=0), "gzip", b'{"name": "x"}'),
        (
            gzip.compress(gzip.compress(b'{"name": "x"}', mtime=0), mtime=0),
            "gzip",
            gzip.compress(b'{"name": "x"}', mtime=0),
        ),
        (b'{"name": "x"}', "identity", b'{"name": "x"}'),
    ],
    ids=["gzip", "double-gzip", "identity"],
)
async def test_crm_reads_the_body_the_gateway_read(gw, standin, body, encoding, read_by_gateway):
    """aiohttp inflates a gzip request body: the CRM must get those bytes, not them labelled gzip."""
    headers = {**bearer("grace", mfa=True), **JSON, "Content-Encoding": encoding}
    answer = await exchange(gw.port, request("/api/customers", headers, method="POST", body=body))
    assert answer.status == 200
    (write,) = writes_seen(standin)
    labelled = [v for v in write.headers("Content-Encoding") if v != "identity"]
    read_by_crm = gzip.decompress(write.body) if labelled == ["gzip"] else write.body
    assert not labelled or labelled == ["gzip"]
    assert read_by_crm == read_by_gateway
