"""apply_obligations end to end: records located, scoped, masked, re-encoded."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest

from gateway.declared import Aggregate, AnswerContract
from gateway.errors import Forbidden, ObligationUnenforceable
from gateway.model import Mask
from gateway.response import apply_obligations, count_records, records_of

from .factories import CONTACTS, CUSTOMERS, DEALS, customer, customers_page, endpoint, identity, obligations, run

OWN = obligations("own")
PHONE_MASKS = obligations("all", Mask("phone", "redact", 4), Mask("complaints", "remove"), Mask("email", "hash"))


def test_list_keeps_in_scope_records_declared_metadata_and_a_recomputed_total():
    result = run(customers_page("alice", "bob", "alice", "carol"), ob=OWN)
    body = orjson.loads(result.body)
    assert [r["id"] for r in body["data"]] == [1, 3]
    assert body == {"data": body["data"], "page": 1, "page_size": 50, "total": 2}
    assert (result.records_seen, result.records_returned, result.record_ids) == (4, 2, ("1", "3"))


def test_undeclared_parts_of_an_answer_are_dropped_for_a_restricted_caller():
    page = {
        **customers_page("alice", "bob"),
        "users": [{"id": "bob", "email": "bob@example.com"}],
        "summary": "2 customers, 1 of them bob's",
        "stats": {"sum": 10},
    }
    out = orjson.loads(run(page, ob=OWN).body)
    assert set(out) == {"data", "page", "page_size", "total"}


def test_undeclared_parts_refuse_the_answer_when_the_endpoint_says_so():
    strict = endpoint(answer=AnswerContract(metadata=("page", "page_size", "total"), undeclared="refuse"))
    assert run(customers_page("alice"), ep=strict, ob=OWN).records_returned == 1
    with pytest.raises(ObligationUnenforceable):
        run({**customers_page("alice"), "users": []}, ep=strict, ob=OWN)


def test_scope_all_returns_everything():
    result = run(customers_page("alice", "bob"), ob=obligations("all"))
    assert result.records_returned == 2


def test_team_scope_on_a_list():
    result = run(customers_page("alice", "bob", "carol"), ob=obligations("team"))
    assert result.record_ids == ("1", "2")


def test_nested_records_path_and_nested_owner():
    body = {
        "results": {
            "items": [
                {"id": 1, "owner": {"id": "alice", "email": "alice@example.com"}, "team": "east"},
                {"id": 2, "owner": {"id": "bob", "email": "bob@example.com"}, "team": "east"},
            ],
            "count": 2,
        },
        "next": "/api/contacts?page=2",
    }
    declared = AnswerContract(aggregates=(Aggregate("results.count", "count"),), metadata=("next",))
    result = run(body, ep=endpoint(CONTACTS, ("results.items[]",), answer=declared), ob=OWN)
    out = orjson.loads(result.body)
    assert [r["id"] for r in out["results"]["items"]] == [1]
    assert out["next"] == "/api/contacts?page=2" and out["results"]["count"] == 1


def test_several_record_arrays_with_assignee_lists():
    def deal(i, *people):
        return {"id": i, "assigned_to": [{"id": p, "email": f"{p}@example.com"} for p in people]}

    body = {
        "open": [deal(1, "alice"), deal(2, "bob")],
        "closed": [deal(3, "bob", "alice"), deal(4, "carol")],
        "page": 1,
    }
    result = run(body, ep=endpoint(DEALS, ("open[]", "closed[]")), ob=OWN)
    out = orjson.loads(result.body)
    assert [d["id"] for d in out["open"]] == [1]
    assert [d["id"] for d in out["closed"]] == [3]
    assert (result.records_seen, result.records_returned, result.record_ids) == (4, 2, ("1", "3"))


@pytest.mark.parametrize(
    "resource, records, body",
    [
        (CUSTOMERS, ("$",), customer(5, "bob")),
        (CONTACTS, ("contact",), {"contact": {"id": 5, "owner": {"id": "bob"}}}),
    ],
)
def test_single_record_out_of_scope_is_forbidden(resource, records, body):
    with pytest.raises(Forbidden) as caught:
        run(body, ep=endpoint(resource, records, action="view"), ob=OWN)
    assert caught.value.reason == "record-out-of-scope"


def test_single_record_in_scope_is_returned_and_masked():
    result = run(
        customer(5, "alice"),
        ep=endpoint(CUSTOMERS, ("$",), action="view"),
        ob=obligations("own", Mask("phone", "redact", 4)),
    )
    out = orjson.loads(result.body)
    assert out["id"] == 5 and out["phone"] == "*************7 89"
    assert (result.records_seen, result.records_returned, result.record_ids) == (1, 1, ("5",))


def test_masks_on_every_returned_record():
    result = run(customers_page("alice", "bob"), ob=PHONE_MASKS)
    records = orjson.loads(result.body)["data"]
    assert all("complaints" not in r for r in records)
    assert [r["phone"] for r in records] == ["*************7 89"] * 2
    assert all(r["email"].startswith("hmac:") for r in records)
    assert result.fields_masked == frozenset({"phone", "complaints", "email"})


def test_fields_masked_lists_only_fields_that_were_there():
    result = run(customers_page("alice"), ob=obligations("all", Mask("phone", "hash"), Mask("fax", "remove")))
    assert result.fields_masked == frozenset({"phone"})


def test_record_ids_skip_missing_and_null_ids():
    page = customers_page("alice", "alice", "alice")
    del page["data"][0]["id"]
    page["data"][1]["id"] = None
    assert run(page, ob=OWN).record_ids == ("3",)


def test_a_records_path_listed_twice_counts_once():
    result = run(customers_page("alice", "bob"), ep=endpoint(CUSTOMERS, ("data[]", "data[]")), ob=OWN)
    assert (result.records_seen, result.records_returned) == (2, 1)


def test_ids_are_taken_before_masks():
    result = run(customers_page("alice"), ob=obligations("all", Mask("id", "hash")))
    assert result.record_ids == ("1",)
    assert orjson.loads(result.body)["data"][0]["id"].startswith("hmac:")


@pytest.mark.parametrize(
    "encoding, compress",
    [("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress)],
)
def test_compressed_bodies_give_the_same_result_as_plain(encoding, compress):
    raw = orjson.dumps(customers_page("alice", "bob", "carol"))
    plain = run(raw, ob=OWN)
    packed = run(compress(raw), ob=OWN, encoding=encoding)
    assert packed == plain


@pytest.mark.parametrize("encoding", ["br", "compress", "gzip, br", "unknown"])
def test_undecodable_encodings_are_unenforceable(encoding):
    with pytest.raises(ObligationUnenforceable):
        run(gzip.compress(orjson.dumps(customers_page("alice")), mtime=0), ob=OWN, encoding=encoding)


def test_zip_bomb_is_unenforceable():
    bomb = gzip.compress(b" " * (8 << 20), mtime=0)
    with pytest.raises(ObligationUnenforceable):
        run(bomb, ob=OWN, encoding="gzip", max_bytes=1 << 20)


def test_body_over_the_cap_is_unenforceable():
    raw = orjson.dumps(customers_page(*["alice"] * 50))
    with pytest.raises(ObligationUnenforceable):
        run(raw, ob=OWN, max_bytes=len(raw) - 1)


@pytest.mark.parametrize("content_type", [None, "text/html", "text/csv", "application/json; charset=latin-1"])
def test_wrong_content_type_is_unenforceable(content_type):
    with pytest.raises(ObligationUnenforceable):
        run(customers_page("alice"), ob=OWN, content_type=content_type)


def test_bad_json_is_unenforceable():
    with pytest.raises(ObligationUnenforceable):
        run(b'{"data": [', ob=OWN)


@pytest.mark.parametrize(
    "records, body",
    [
        (("data[]",), {"items": [customer(1)]}),  # the records moved: refuse, do not pass through
        (("data[]",), {"data": None}),
        (("data[]",), {"data": [customer(1), "stray"]}),
        (("data[]",), [customer(1)]),
        (("$",), [customer(1)]),
        (("contact",), {"other": {}}),
    ],
)
def test_records_not_where_the_catalogue_says_are_unenforceable(records, body):
    with pytest.raises(ObligationUnenforceable):
        run(body, ep=endpoint(CUSTOMERS, records), ob=obligations("all", Mask("phone", "hash")))


def test_unscoped_level_for_the_resource_is_unenforceable():
    with pytest.raises(ObligationUnenforceable):
        run(customers_page("alice"), ep=endpoint(DEALS, ("data[]",)), ob=obligations("team"))


def test_empty_body_passes_and_a_recordless_answer_keeps_only_its_metadata():
    assert run(b"", ob=OWN).body == b""
    recordless = endpoint(CUSTOMERS, (), answer=AnswerContract(metadata=("deleted",)))
    result = run({"deleted": 2, "ids": [1, 2], "owners": ["bob"]}, ep=recordless, ob=OWN)
    assert (orjson.loads(result.body), result.records_seen) == ({"deleted": 2}, 0)
    with pytest.raises(ObligationUnenforceable):
        run(b"not json", ep=recordless, ob=OWN, content_type="text/plain")


def test_output_is_reencoded_so_the_client_sees_what_was_filtered():
    # Duplicate keys: the client's parser might pick the other owner; the re-encoded body has one.
    raw = b'{"data": [{"id": 1, "owner_id": "bob", "owner_id": "alice"}]}'
    result = run(raw, ob=OWN)
    assert result.body == b'{"data":[{"id":1,"owner_id":"alice"}]}'


CSV = (
    b"id,name,phone,owner_id,complaints\r\n"
    b'1,"Smith, John",0123456789,alice,late\r\n'
    b"2,Ann,0987654321,bob,\r\n"
    b"3,Zoe,0555555555,alice,rude\r\n"
)
CSV_EXPORT = endpoint(CUSTOMERS, ("$",), fmt="csv", action="export")


def run_csv(body: bytes = CSV, **kwargs):
    kwargs.setdefault("ep", CSV_EXPORT)
    return run(body, content_type="text/csv; charset=utf-8", **kwargs)


def test_csv_scope_and_masks():
    result = run_csv(ob=obligations("own", Mask("complaints", "remove"), Mask("phone", "redact", 2)))
    assert result.body == b'id,name,phone,owner_id\r\n1,"Smith, John",********89,alice\r\n3,Zoe,********55,alice\r\n'
    assert (result.records_seen, result.records_returned, result.record_ids) == (3, 2, ("1", "3"))
    assert result.fields_masked == frozenset({"complaints", "phone"})
    assert result.content_type == "text/csv; charset=utf-8"


def test_csv_keeps_lf_line_terminator():
    result = run_csv(CSV.replace(b"\r\n", b"\n"), ob=OWN)
    assert (
        result.body
        == b'id,name,phone,owner_id,complaints\n1,"Smith, John",0123456789,alice,late\n3,Zoe,0555555555,alice,rude\n'
    )


def test_gzipped_csv_gives_the_same_result():
    assert run_csv(gzip.compress(CSV, mtime=0), ob=OWN, encoding="gzip") == run_csv(ob=OWN)


@pytest.mark.parametrize(
    "ep, ob",
    [
        (CSV_EXPORT, obligations("all", Mask("owner.email", "hash"))),
        (endpoint(CONTACTS, ("$",), fmt="csv"), OWN),  # scope field owner.id is nested
        (endpoint(CUSTOMERS, ("data[]",), fmt="csv"), OWN),
    ],
)
def test_csv_cannot_apply_nested_paths(ep, ob):
    with pytest.raises(ObligationUnenforceable):
        run_csv(ep=ep, ob=ob)


def test_csv_in_another_charset_is_unenforceable():
    with pytest.raises(ObligationUnenforceable):
        run(CSV, ep=CSV_EXPORT, ob=OWN, content_type="text/csv; charset=windows-1252")


def test_count_records_counts_without_changing_the_body():
    raw = orjson.dumps(customers_page("alice", "bob"))
    result = count_records(
        gzip.compress(raw, mtime=0),
        content_type="application/json",
        content_encoding="gzip",
        endpoint=endpoint(),
        identity=identity(),
        max_bytes=1 << 20,
    )
    assert (result.body, result.records_seen, result.records_returned, result.record_ids) == (raw, 2, 2, ("1", "2"))


def test_count_records_counts_csv_rows():
    result = count_records(CSV, content_type="text/csv", content_encoding=None, endpoint=CSV_EXPORT, max_bytes=1 << 20)
    assert (result.records_seen, result.record_ids) == (3, ("1", "2", "3"))


def test_records_of_follows_every_path_in_order():
    body = {"open": [{"id": 1}], "closed": [{"id": 2}, {"id": 3}]}
    assert [r["id"] for r in records_of(body, endpoint(DEALS, ("open[]", "closed[]")))] == [1, 2, 3]


def test_apply_obligations_is_keyword_only():
    with pytest.raises(TypeError):
        apply_obligations(b"{}", None, None, endpoint(), OWN, identity(), 100)  # type: ignore[misc]
