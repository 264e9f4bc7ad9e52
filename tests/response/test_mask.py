"""Field masks: remove, redact, hash, on JSON records and CSV tables."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gateway.errors import ObligationUnenforceable
from gateway.model import Mask
from gateway.response.formats import CsvTable
from gateway.response.mask import compile_masks, mask_records, mask_table, pseudonym, redact


@pytest.mark.parametrize(
    "value, keep_last, expected",
    [
        ("+33 1 23 45 67 89", 4, "*************7 89"),
        ("0123456789", 4, "******6789"),
        ("0123456789", 0, "**********"),
        ("123", 4, "***"),  # shorter than keep_last: nothing shown
        ("1234", 4, "****"),  # as long as keep_last: nothing shown
        ("", 4, ""),
        (123456, 2, "****56"),  # numbers are masked through their text
        (True, 1, "***e"),
    ],
)
def test_redact(value, keep_last, expected):
    assert redact(value, keep_last) == expected


def test_pseudonym_is_a_keyed_hmac_not_a_guessable_hash():
    key = b"k" * 32
    expected = "hmac:" + hmac.new(key, b"alice@example.com", hashlib.sha256).hexdigest()[:16]
    assert pseudonym("alice@example.com", key) == expected
    plain = hashlib.sha256(b"alice@example.com").hexdigest()[:16]
    assert plain not in pseudonym("alice@example.com")  # without the key, trying candidates fails
    assert pseudonym("alice@example.com") == pseudonym("alice@example.com")  # stable per process


def test_pseudonym_of_a_number_equals_the_pseudonym_of_its_text():
    assert pseudonym(1234) == pseudonym("1234")


def masks(*items: Mask):
    return compile_masks(tuple(items))


def test_remove_deletes_the_key():
    records = [{"id": 1, "complaints": "x"}, {"id": 2}]
    assert mask_records(records, masks(Mask("complaints", "remove"))) == {"complaints"}
    assert records == [{"id": 1}, {"id": 2}]


def test_redact_and_hash_top_level_fields():
    records = [{"phone": "0123456789", "email": "a@b.c"}]
    masked = mask_records(records, masks(Mask("phone", "redact", 4), Mask("email", "hash")))
    assert masked == {"phone", "email"}
    assert records == [{"phone": "******6789", "email": pseudonym("a@b.c")}]


def test_nested_and_list_paths():
    records = [
        {"owner": {"id": "alice", "email": "alice@example.com"}},
        {"assigned_to": [{"email": "bob@example.com"}, {"email": "carol@example.com"}]},
    ]
    mask_records(records, masks(Mask("owner.email", "remove"), Mask("assigned_to[].email", "redact")))
    assert records[0] == {"owner": {"id": "alice"}}
    assert records[1]["assigned_to"] == [{"email": "*" * 15}, {"email": "*" * 17}]


def test_absent_field_is_not_an_error_and_not_reported():
    records = [{"id": 1}]
    assert mask_records(records, masks(Mask("phone", "redact", 4), Mask("owner.email", "hash"))) == set()
    assert records == [{"id": 1}]


def test_null_stays_null():
    records = [{"phone": None}]
    mask_records(records, masks(Mask("phone", "hash")))
    assert records == [{"phone": None}]


@pytest.mark.parametrize(
    "mask",
    [
        Mask("$", "remove"),  # the whole record is not a field
        Mask("tags[]", "redact"),  # list items are not fields
        Mask("owner..id", "hash"),  # not a field path
        Mask("phone", "scramble"),  # type: ignore[arg-type]
        Mask("phone", "redact", -1),
    ],
)
def test_masks_that_cannot_apply_are_unenforceable(mask):
    with pytest.raises(ObligationUnenforceable):
        compile_masks((mask,))


def table() -> CsvTable:
    columns = ["id", "phone", "complaints"]
    return CsvTable(columns, [dict(zip(columns, ["1", "0123456789", "late"]))])


def test_csv_remove_drops_the_column():
    t = table()
    assert mask_table(t, masks(Mask("complaints", "remove"))) == {"complaints"}
    assert t.columns == ["id", "phone"]


def test_csv_redact_changes_cells():
    t = table()
    assert mask_table(t, masks(Mask("phone", "redact", 2), Mask("fax", "hash"))) == {"phone"}
    assert t.rows[0]["phone"] == "********89"


def test_csv_nested_mask_is_unenforceable():
    with pytest.raises(ObligationUnenforceable):
        mask_table(table(), masks(Mask("owner.email", "hash")))
