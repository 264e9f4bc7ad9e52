"""Request bodies read strictly, the way the CRM will read them, or refused."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest
from gateway.upstream import bodies

ALL = ("json", "form", "multipart")
FORM = "application/x-www-form-urlencoded"


def parse(raw: bytes, content_type: str, accepted: tuple[str, ...]) -> tuple[str, object]:
    """What a check reads of a body for an endpoint taking ``accepted`` media."""
    return bodies.RequestBody(raw, content_type).read(accepted)


def multipart(*parts: str, boundary: str = "b") -> tuple[bytes, str]:
    body = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--\r\n"
    return body.encode(), f"multipart/form-data; boundary={boundary}"


def test_json_object_is_read_as_is():
    assert parse(b'{"owner": {"id": "a"}}', "application/json", ALL) == ("json", {"owner": {"id": "a"}})


def test_json_duplicate_keys_are_refused():
    with pytest.raises(BadRequest) as caught:
        parse(b'{"owner_id": "a", "owner_id": "b"}', "application/json", ALL)
    assert caught.value.reason == "body-ambiguous"


@pytest.mark.parametrize(
    ("raw", "record"),
    [
        (b"owner_id=bob&name=x", {"owner_id": "bob", "name": "x"}),
        (b"assigned_to=a&assigned_to=b", {"assigned_to": ["a", "b"]}),
        (b"assigned_to%5B%5D=a&assigned_to%5B%5D=b", {"assigned_to": ["a", "b"]}),
        (b"owner%5Bemail%5D=b%40x", {"owner": {"email": "b@x"}}),
        (b"assigned_to%5B0%5D%5Bid%5D=a", {"assigned_to": {"id": "a"}}),
    ],
)
def test_form_bodies_become_one_record(raw, record):
    assert parse(raw, FORM, ALL) == ("form", record)


def test_form_method_override_is_refused():
    with pytest.raises(BadRequest) as caught:
        parse(b"_method=DELETE", FORM, ALL)
    assert caught.value.reason == "method-override-refused"


def test_multipart_fields_and_files():
    raw, ctype = multipart(
        'Content-Disposition: form-data; name="owner"\r\n\r\nbob',
        'Content-Disposition: form-data; name="doc"; filename="a.txt"\r\n\r\nhello',
    )
    media, record = parse(raw, ctype, ALL)
    assert media == "multipart" and record["owner"] == "bob" and record["doc"] is bodies.FILE


@pytest.mark.parametrize(
    "part",
    [
        "Content-Disposition: form-data; name*=UTF-8''owner\r\n\r\nbob",
        "Content-Disposition: form-data; name=owner\r\nContent-Transfer-Encoding: base64\r\n\r\nYm9i",
        "Content-Disposition: form-data\r\n\r\nbob",
    ],
)
def test_multipart_parts_read_differently_by_other_parsers_are_refused(part):
    raw, ctype = multipart(part)
    with pytest.raises(BadRequest) as caught:
        parse(raw, ctype, ALL)
    assert caught.value.reason == "body-unreadable"


@pytest.mark.parametrize("ctype", ["text/plain", None, "application/xml", FORM])
def test_undeclared_media_types_are_refused_with_415(ctype):
    with pytest.raises(bodies.UnsupportedMedia) as caught:
        parse(b"owner_id=bob", ctype, ("json",))
    assert caught.value.status == 415


def test_a_charset_other_than_utf8_is_refused():
    with pytest.raises(BadRequest) as caught:
        parse(b"owner_id=bob", FORM + "; charset=latin-1", ALL)
    assert caught.value.reason == "body-unreadable"


def test_a_body_is_parsed_once_for_every_check():
    body = bodies.RequestBody(b'{"ids": [1, 2]}', "application/json")
    first = body.data()
    assert body.read(("json",)) == ("json", first)
    assert body.data() is first  # the same document, not a second parse


def test_a_parse_error_is_the_same_refusal_for_every_check():
    body = bodies.RequestBody(b'{"owner_id": "a", "owner_id": "b"}', "application/json")
    with pytest.raises(BadRequest) as first:
        body.data()
    with pytest.raises(BadRequest) as again:
        body.read(("json",))
    assert first.value is again.value and first.value.reason == "body-ambiguous"


def test_media_and_charset_are_refused_before_the_body_is_read():
    body = bodies.RequestBody(b"not json", "application/json; charset=latin-1")
    with pytest.raises(BadRequest) as caught:
        body.read(("json",))
    assert caught.value.reason == "body-unreadable" and "charset" in caught.value.detail
    with pytest.raises(bodies.UnsupportedMedia):
        body.read(("form",))
