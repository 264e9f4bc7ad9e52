from __future__ import annotations

import pytest

from ..factories import make_criterion, make_ctx, try_criterion

OFFICE = "source_ip: {in: [10.0.0.0/8, '::1/128', 198.51.100.0/24]}"


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("10.1.2.3", True),
        ("10.255.255.255", True),
        ("11.0.0.1", False),
        ("198.51.100.7", True),
        ("198.51.101.7", False),
        ("::1", True),
        ("::2", False),
        ("::ffff:10.1.2.3", True),  # IPv4-mapped IPv6 is judged as the IPv4 address it carries
        ("::ffff:8.8.8.8", False),
        ("2001:db8::1", False),
        (None, None),
    ],
)
def test_in(ip, expected):
    assert make_criterion(OFFICE).evaluate(make_ctx(ip=ip)) is expected


@pytest.mark.parametrize(("ip", "expected"), [("10.1.2.3", False), ("8.8.8.8", True), (None, None)])
def test_not_in(ip, expected):
    assert make_criterion("source_ip: {not_in: [10.0.0.0/8]}").evaluate(make_ctx(ip=ip)) is expected


def test_list_reference():
    criterion = make_criterion("source_ip: {in: [$office, 192.168.0.0/16]}", lists={"office": ["10.0.0.0/8"]})
    assert criterion.evaluate(make_ctx(ip="10.9.9.9")) is True
    assert criterion.evaluate(make_ctx(ip="192.168.1.1")) is True
    assert criterion.evaluate(make_ctx(ip="172.16.0.1")) is False


@pytest.mark.parametrize(
    ("value", "message"),
    [("10.0.0.1/8", "bad CIDR '10.0.0.1/8'"), ("10.0.0.0/33", "bad CIDR"), ("office", "bad CIDR 'office'")],
)
def test_bad_cidr(value, message):
    criterion, errors = try_criterion(f"source_ip: {{in: ['{value}']}}")
    assert criterion is None
    assert message in str(errors[0])
