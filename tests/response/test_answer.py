"""What a restricted caller receives beside the records: only what the catalogue declares."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from gateway.declared import Aggregate, AnswerContract, CsvColumn, MaxRecords, Related
from gateway.errors import Forbidden
from gateway.model import Mask, Resource, ScopeField

from .factories import endpoint, identity, obligations, run

PEOPLE = Resource("people", scope_fields={"own": ScopeField("id", "user")})
LEADS = Resource(
    "leads",
    scope_fields={"own": ScopeField("assigned_to[].id", "user"), "team": ScopeField("team", "team")},
    fields=frozenset({"id", "title", "amount", "assigned_to", "team", "phone", "mobilephone", "contacts"}),
    aliases={"phone": ("mobilePhone",)},
    case_insensitive=True,
)
CONTACTS = Resource("contacts", scope_fields={"own": ScopeField("owner", "user")})


def lead(i: int, owner: str, **extra) -> dict:
    return {"id": i, "title": f"L{i}", "amount": 10 * i, "assigned_to": [{"id": owner}], "team": "east", **extra}


def page(*owners: str) -> dict:
    records = [lead(i, o) for i, o in enumerate(owners, start=1)]
    return {
        "count": 301,
        "results": records,
        "leads": [dict(r) for r in records],
        "totals": {"amount_sum": 999999, "by_status": {"won": 300}},
        "users": [{"id": "alice", "email": "alice@example.com"}, {"id": "bob", "email": "bob@example.com"}],
        "next": "/leads/?page=2",
        "debug": {"sql": "select *"},
    }


LIST = AnswerContract(
    related=(Related("users[]", PEOPLE),),
    aggregates=(
        Aggregate("count", "count"),
        Aggregate("totals.amount_sum", "sum", "amount"),
        Aggregate("totals.by_status", "withhold"),
    ),
    metadata=("next",),
)


def out(body, ob=obligations("own"), contract=LIST, resource=LEADS, records=("results[]", "leads[]")):
    result = run(body, ep=endpoint(resource, records, answer=contract), ob=ob)
    return orjson.loads(result.body), result


def test_counts_totals_and_side_lists_are_rebuilt_from_what_the_caller_may_see():
    body, result = out(page("alice", "bob", "alice"))
    assert [r["id"] for r in body["results"]] == [r["id"] for r in body["leads"]] == [1, 3]
    assert body["count"] == 2 and body["totals"] == {"amount_sum": 40}
    assert body["users"] == [{"id": "alice", "email": "alice@example.com"}]
    assert "debug" not in body and body["next"] == "/leads/?page=2"
    assert (result.records_seen, result.records_returned, result.record_ids) == (3, 2, ("1", "3"))


def test_a_sum_over_a_masked_field_is_withheld():
    body, _ = out(page("alice"), ob=obligations("own", Mask("amount", "remove")))
    assert "amount_sum" not in body["totals"] and "amount" not in body["results"][0]


def test_masks_follow_aliases_and_case_in_every_copy():
    data = page("alice")
    for copy in (data["results"][0], data["leads"][0]):
        copy.update(Phone="+33 1 00 00 00 01", mobilePhone="+33 6 00 00 00 02")
    body, result = out(data, ob=obligations("own", Mask("phone", "redact", 2)))
    for copy in (body["results"][0], body["leads"][0]):
        assert copy["Phone"].endswith("01") and copy["Phone"].startswith("*")
        assert copy["mobilePhone"].startswith("*")
    assert result.fields_masked == {"phone"}


def test_undeclared_record_fields_are_dropped():
    data = page("alice")
    data["results"][0]["internal_margin"] = 0.42
    body, _ = out(data)
    assert "internal_margin" not in body["results"][0]


def test_nested_related_records_are_filtered_and_masked_as_their_own_resource():
    data = {
        "lead": lead(
            1,
            "alice",
            contacts=[{"id": 7, "owner": "alice", "phone": "0123"}, {"id": 8, "owner": "bob", "phone": "0456"}],
        )
    }
    contract = AnswerContract(related=(Related("lead.contacts[]", CONTACTS),))
    body, _ = out(data, ob=obligations("own", Mask("phone", "remove")), contract=contract, records=("lead",))
    assert body["lead"]["contacts"] == [{"id": 7, "owner": "alice"}]


def test_a_single_related_record_out_of_scope_is_removed():
    contract = AnswerContract(related=(Related("lead.manager", PEOPLE),))
    body, _ = out({"lead": lead(1, "alice", manager={"id": "bob"})}, contract=contract, records=("lead",))
    assert "manager" not in body["lead"]


def test_max_records_refuses_or_truncates_as_declared():
    refuse = AnswerContract(max_records=MaxRecords(2))
    with pytest.raises(Forbidden) as caught:
        out(page("alice", "alice", "alice"), contract=refuse)
    assert caught.value.reason == "too-many-records"
    truncate = AnswerContract(max_records=MaxRecords(2, "truncate"))
    body, result = out(page("alice", "alice", "alice"), contract=truncate)
    assert [r["id"] for r in body["results"]] == [r["id"] for r in body["leads"]] == [1, 2]
    assert result.records_returned == 2


def test_csv_with_human_headers_multi_valued_owners_and_column_masks():
    text = (
        "ID,Title,Assigned to,Phone Number,Internal\r\n"
        "1,A,alice@example.com; bob@example.com,0123456789,x\r\n"
        "2,B,bob@example.com,0987654321,y\r\n"
    )
    csv_endpoint = endpoint(
        LEADS,
        ("$",),
        fmt="csv",
        answer=AnswerContract(),
        csv_columns={
            "ID": CsvColumn("id"),
            "Title": CsvColumn("title"),
            "Assigned to": CsvColumn("assigned_to"),
            "Phone Number": CsvColumn("phone"),
        },
        csv_scope={"own": ScopeField("Assigned to", "email", split=";")},
    )
    result = run(
        text.encode(),
        ep=csv_endpoint,
        ob=obligations("own", Mask("phone", "redact", 2)),
        content_type="text/csv",
        who=identity("alice"),
    )
    rows = list(csv.DictReader(io.StringIO(result.body.decode())))
    assert [r["ID"] for r in rows] == ["1"] and result.record_ids == ("1",)
    assert set(rows[0]) == {"ID", "Title", "Assigned to", "Phone Number"}  # Internal is undeclared
    assert rows[0]["Phone Number"] == "********89"


def test_quoted_field_paths_name_csv_headers_with_spaces_for_scope_and_masks():
    text = "ID,Owner Email,Phone Number\r\n1,alice@example.com,0123456789\r\n2,bob@example.com,0987654321\r\n"
    resource = Resource("leads", scope_fields={"own": ScopeField('"Owner Email"', "email")})
    result = run(
        text.encode(),
        ep=endpoint(resource, ("$",), fmt="csv", answer=AnswerContract()),
        ob=obligations("own", Mask('"Phone Number"', "redact", 2)),
        content_type="text/csv",
    )
    rows = list(csv.DictReader(io.StringIO(result.body.decode())))
    assert [(r["ID"], r["Phone Number"]) for r in rows] == [("1", "********89")]


def test_quoted_field_paths_name_json_keys_with_dots_and_spaces():
    resource = Resource("leads", scope_fields={"own": ScopeField('"owner.id"', "user")})
    body = {"data": [{"id": 1, "owner.id": "alice", "Home Phone": "0123"}, {"id": 2, "owner.id": "bob"}]}
    result = run(body, ep=endpoint(resource), ob=obligations("own", Mask('"Home Phone"', "remove")))
    assert orjson.loads(result.body)["data"] == [{"id": 1, "owner.id": "alice"}]
