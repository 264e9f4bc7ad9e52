"""The response filter's fast paths and caches answer exactly as the plain code they stand for.

* ``answer.distinct`` returns the list itself when every id is a distinct string or integer, else
  keys each record (``answer.record_key``): compared with that keying on ids of every JSON type.
* ``mask_records`` masks a top-level key in one loop with redaction inlined: compared with
  applying ``redact`` / ``pseudonym`` value by value.
* ``answer.pruning_tree`` is cached per endpoint object: compared with ``build_pruning_tree``, and
  a second endpoint (even an equal one) gets its own entry.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.declared import Aggregate, AnswerContract, Related
from gateway.model import Mask
from gateway.response import answer
from gateway.response.mask import compile_masks, mask_records, pseudonym, redact
from tests.property.conftest import examples
from tests.response.factories import CONTACTS, CUSTOMERS, endpoint

# ids of every JSON type, with collisions on purpose: 1 / "1" / 1.0 / True, and unhashable ones
ID = st.one_of(
    st.integers(-3, 3),
    st.sampled_from(["1", "2", "a", ""]),
    st.sampled_from([1.0, 2.5, True, False, None]),
    st.just({"x": 1}),
    st.just([1]),
)


def reference_distinct(records: list[dict[str, Any]], id_field: str) -> list[dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for record in records:
        out.setdefault(answer.record_key(record, id_field), record)
    return list(out.values())


@st.composite
def record_lists(draw):
    n = draw(st.integers(0, 8))
    records = []
    for _ in range(n):
        record: dict[str, Any] = {"name": "r"}
        if draw(st.booleans()) or n > 5:  # mostly with an id
            record["id"] = draw(ID)
        records.append(record)
    if records and draw(st.booleans()):  # the same object twice (two places, one record)
        records.append(records[draw(st.integers(0, len(records) - 1))])
    return records


@settings(max_examples=examples(300, 5000))
@given(record_lists())
def test_distinct_is_the_keyed_distinct(records):
    fast = answer.distinct(records, "id")
    assert [id(r) for r in fast] == [id(r) for r in reference_distinct(records, "id")]
    assert fast is not records  # a new list: callers keep the places' lists as they are
    assert [id(r) for r in answer.distinct(iter(records), "id")] == [id(r) for r in fast]


def test_distinct_keeps_one_and_the_text_one_apart_and_drops_a_repeated_id():
    a, b, c, d = {"id": 1}, {"id": "1"}, {"id": 1}, {"id": True}
    assert [id(r) for r in answer.distinct([a, b, c], "id")] == [id(a), id(b)]
    assert [id(r) for r in answer.distinct([a, b, c, d], "id")] == [id(a), id(b), id(d)]
    assert [id(r) for r in answer.distinct([a, b, d], "id")] == [id(a), id(b), id(d)]


VALUE = st.one_of(
    st.text(max_size=12),
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(0, 3), max_size=2),
)
MASK = st.builds(
    Mask, st.sampled_from(["phone", "email", "notes"]), st.sampled_from(["remove", "redact", "hash"]), st.integers(0, 6)
)


def reference_mask(records: list[dict[str, Any]], masks: list[Mask]) -> set[str]:
    masked = set()
    for mask in masks:
        for record in records:
            if mask.field in record:
                masked.add(mask.field)
                value = record[mask.field]
                if mask.op == "remove":
                    del record[mask.field]
                elif value is not None:
                    record[mask.field] = pseudonym(value) if mask.op == "hash" else redact(value, mask.keep_last)
    return masked


@settings(max_examples=examples(120, 5000))
@given(
    st.lists(st.dictionaries(st.sampled_from(["id", "phone", "email", "notes"]), VALUE), max_size=6),
    st.lists(MASK, min_size=1, max_size=3),
)
def test_top_level_masks_equal_the_value_by_value_masks(records, masks):
    expected = copy.deepcopy(records)
    want = reference_mask(expected, masks)
    got = mask_records(records, compile_masks(tuple(masks)))
    assert got == want
    assert records == expected
    assert [list(r) for r in records] == [list(r) for r in expected]  # key order too: the same bytes out


CONTRACTS = [
    AnswerContract(),
    AnswerContract(aggregates=(Aggregate("total", "count"),), metadata=("page", "page_size")),
    AnswerContract(related=(Related("included[]", CONTACTS),), metadata=("meta.next",)),
    AnswerContract(metadata=("meta", "meta.next")),
]
RECORDS = [("data[]",), ("$",), ("results.items[]", "lead"), ("a.b[]",)]


@settings(max_examples=examples(50, 500))
@given(st.sampled_from(CONTRACTS), st.sampled_from(RECORDS))
def test_cached_pruning_tree_equals_a_fresh_one(contract, records):
    one = endpoint(CUSTOMERS, records=records, answer=contract)
    equal = endpoint(CUSTOMERS, records=records, answer=contract)
    assert answer.pruning_tree(one) == answer.build_pruning_tree(one)
    assert answer.pruning_tree(one) is answer.pruning_tree(one)  # built once per endpoint
    assert answer.pruning_tree(equal) == answer.build_pruning_tree(equal)


def test_a_new_endpoint_never_gets_another_endpoints_tree():
    first = endpoint(CUSTOMERS, records=("data[]",), answer=AnswerContract(metadata=("page",)))
    tree = answer.pruning_tree(first)
    other = endpoint(CUSTOMERS, records=("results[]",), answer=AnswerContract())
    assert answer.pruning_tree(other) == {"results": None} != tree
    assert answer.pruning_tree(first) == {"data": None, "page": None}
