"""Masking: no masked value survives in any output format (JSON, CSV, gzip- or deflate-encoded).

Masked values are drawn from an alphabet that cannot occur in JSON/CSV syntax, in pseudonyms
(lower-case hex) or in redaction stars, and never in unmasked values -- so "the value is not in the
output bytes" is an exact test. For ``redact`` the last ``keep_last`` characters may remain, so
the rest of the value must not.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Mask, Obligations
from gateway.response import apply_obligations
from tests.property.conftest import examples
from tests.response.factories import CUSTOMERS, endpoint, identity

FIELDS = ["phone", "email", "complaints", "quote_price", "notes"]
SECRET = st.text(alphabet="XZJKVW", min_size=6, max_size=20).map(lambda s: "QX" + s)
PLAIN = st.text(alphabet="abcdefghijklmnop 0123456789", max_size=12)
MASK = st.builds(
    lambda field, op, keep: Mask(field, op, keep if op == "redact" else 0),
    st.sampled_from(FIELDS),
    st.sampled_from(["remove", "redact", "hash"]),
    st.integers(0, 4),
)


@st.composite
def cases(draw):
    masks = draw(st.lists(MASK, min_size=1, max_size=3, unique_by=lambda m: m.field))
    masked = {m.field for m in masks}
    n = draw(st.integers(1, 5))
    records = []
    for i in range(n):
        record = {"id": i + 1, "owner_id": "alice", "name": draw(PLAIN)}
        for field in FIELDS:
            record[field] = draw(SECRET) if field in masked else draw(PLAIN)
        records.append(record)
    fmt = draw(st.sampled_from(["json", "csv"]))
    coding = draw(st.sampled_from([None, "gzip", "deflate"]))
    return masks, records, fmt, coding


def encode(records, fmt: str, coding: str | None) -> tuple[bytes, str]:
    if fmt == "json":
        body, ctype = orjson.dumps({"data": records}), "application/json"
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(records)
        body, ctype = out.getvalue().encode(), "text/csv"
    if coding == "gzip":
        body = gzip.compress(body, mtime=0)
    elif coding == "deflate":
        body = zlib.compress(body)
    return body, ctype


@settings(max_examples=examples(150, 5000), deadline=None)
@given(cases(), st.sampled_from(["all", "own"]))
def test_no_masked_value_survives(case, scope):
    masks, records, fmt, coding = case
    body, ctype = encode(records, fmt, coding)
    ep = endpoint(CUSTOMERS, records=("$",) if fmt == "csv" else ("data[]",), fmt=fmt)
    result = apply_obligations(
        body,
        content_type=ctype,
        content_encoding=coding,
        endpoint=ep,
        obligations=Obligations(scope=scope, masks=tuple(masks)),
        identity=identity("alice"),
        max_bytes=1 << 20,
    )
    out = result.body.decode("utf-8")
    assert result.records_returned == len(records)
    for mask in masks:
        for record in records:
            value = record[mask.field]
            hidden = value[: -mask.keep_last] if mask.op == "redact" and 0 < mask.keep_last < len(value) else value
            assert hidden not in out, (mask, value)
        if mask.op == "remove":  # the key (JSON) or the column (CSV) is gone; a value may spell its name
            if fmt == "json":
                assert all(mask.field not in record for record in orjson.loads(out)["data"])
            else:
                assert mask.field not in out.split("\r\n", 1)[0].split(",")
