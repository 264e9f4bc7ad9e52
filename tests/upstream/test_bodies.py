"""Request bodies read strictly, the way the CRM will read them, or refused."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest
from gateway.upstream import bodies

ALL = ("json", "form", "multipart")
FORM = "application/x-www-form-urlencoded"


def multipart(*parts: str, boundary: str = "b") -> tuple[bytes, str]:
    body = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--\r\n"
    return body.encode(), f"multipart/form-data; boundary={boundary}"


def test_json_object_is_read_as_is():
    assert bodies.parse(b'{"owner": {"id": "a"}}', "application/json", ALL) == ("json", {"owner": {"id": "a"}})


def test_json_duplicate_keys_are_refused():
    with pytest.raises(BadRequest) as caught:
        bodies.parse(b'{"owner_id": "a", "owner_id": "b"}', "application/json", ALL)
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
    assert bodies.parse(raw, FORM, ALL) == ("form", record)


def test_form_method_override_is_refused():
    with pytest.raises(BadRequest) as caught:
        bodies.parse(b"_method=DELETE", FORM, ALL)
    assert caught.value.reason == "method-override-refused"


def test_multipart_fields_and_files():
    raw, ctype = multipart(
        'Content-Disposition: form-data; name="owner"\r\n\r\nbob',
        'Content-Disposition: form-data; name="doc"; filename="a.txt"\r\n\r\nhello',
    )
    media, record = bodies.parse(raw, ctype, ALL)
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
        bodies.parse(raw, ctype, ALL)
    assert caught.value.reason == "body-unreadable"


@pytest.mark.parametrize("ctype", ["text/plain", None, "application/xml", FORM])
def test_undeclared_media_types_are_refused_with_415(ctype):
    with pytest.raises(bodies.UnsupportedMedia) as caught:
        bodies.parse(b"owner_id=bob", ctype, ("json",))
    assert caught.value.status == 415


def test_a_charset_other_than_utf8_is_refused():
    with pytest.raises(BadRequest) as caught:
        bodies.parse(b"owner_id=bob", FORM + "; charset=latin-1", ALL)
    assert caught.value.reason == "body-unreadable"
