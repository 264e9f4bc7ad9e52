"""Client address: the TCP peer, unless a trusted proxy tells us who is behind it."""

from __future__ import annotations

import ipaddress

import pytest
from multidict import CIMultiDict

from gateway.context.client_ip import ClientIPResolver, parse_ip

PROXIES = ["10.0.0.0/24", "fd00::/64"]


def ip(text):
    return ipaddress.ip_address(text) if text else None


def headers(*pairs):
    return CIMultiDict(pairs)


CASES = [
    # (peer, headers, client, peer_trusted)
    ("203.0.113.5", [], "203.0.113.5", False),
    ("203.0.113.5", [("X-Forwarded-For", "10.20.0.7")], "203.0.113.5", False),  # spoof ignored
    ("203.0.113.5", [("Forwarded", "for=10.20.0.7")], "203.0.113.5", False),
    ("10.0.0.1", [], "10.0.0.1", True),  # trusted proxy, no header: the proxy itself
    ("10.0.0.1", [("X-Forwarded-For", "198.51.100.9")], "198.51.100.9", True),
    ("10.0.0.1", [("X-Forwarded-For", "1.1.1.1, 198.51.100.9")], "198.51.100.9", True),  # left is spoofable
    ("10.0.0.1", [("X-Forwarded-For", "198.51.100.9, 10.0.0.2")], "198.51.100.9", True),  # trusted hop skipped
    ("10.0.0.1", [("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "198.51.100.9")], "198.51.100.9", True),
    ("10.0.0.1", [("X-Forwarded-For", "10.0.0.7, 10.0.0.2")], "10.0.0.7", True),  # all trusted: left-most
    ("10.0.0.1", [("X-Forwarded-For", "198.51.100.9:5678")], "198.51.100.9", True),
    ("10.0.0.1", [("X-Forwarded-For", "[2001:db8::1]:443")], "2001:db8::1", True),
    ("10.0.0.1", [("X-Forwarded-For", "2001:db8::1")], "2001:db8::1", True),
    ("10.0.0.1", [("X-Forwarded-For", "  ")], "10.0.0.1", True),  # blank: as if absent
    ("10.0.0.1", [("X-Forwarded-For", "garbage")], None, True),  # never the proxy's own address
    ("10.0.0.1", [("X-Forwarded-For", "198.51.100.9, garbage")], None, True),
    ("10.0.0.1", [("X-Forwarded-For", "garbage, 198.51.100.9")], "198.51.100.9", True),  # left of client: ignored
    ("10.0.0.1", [("X-Forwarded-For", "198.51.100.9,")], None, True),
    ("10.0.0.1", [("X-Forwarded-For", "999.1.1.1")], None, True),
    ("10.0.0.1", [("X-Forwarded-For", "198.51.100.9"), ("Forwarded", "for=1.1.1.1")], "198.51.100.9", True),
    ("10.0.0.1", [("Forwarded", "for=198.51.100.9")], "10.0.0.1", True),  # not the named header: ignored
    ("::ffff:10.0.0.1", [("X-Forwarded-For", "198.51.100.9")], "198.51.100.9", True),  # mapped IPv4
    ("fd00::5", [("X-Forwarded-For", "198.51.100.9")], "198.51.100.9", True),
    ("::ffff:203.0.113.5", [], "203.0.113.5", False),
    ("10.0.1.1", [("X-Forwarded-For", "198.51.100.9")], "10.0.1.1", False),  # outside 10.0.0.0/24
    (None, [("X-Forwarded-For", "198.51.100.9")], None, False),
    ("not-an-ip", [], None, False),
    ("", [], None, False),
]


@pytest.mark.parametrize(("peer", "pairs", "client", "trusted"), CASES)
def test_client_address_resolution(peer, pairs, client, trusted):
    resolver = ClientIPResolver(PROXIES)
    assert resolver.resolve(peer, headers(*pairs)) == (ip(client), trusted)


FORWARDED_CASES = [
    # (headers, client) with client_address_header: Forwarded, peer 10.0.0.1 (trusted)
    ([("Forwarded", "for=198.51.100.9;proto=https")], "198.51.100.9"),
    ([("Forwarded", 'for="[2001:db8:cafe::17]:4711"')], "2001:db8:cafe::17"),
    ([("Forwarded", "for=1.1.1.1, for=198.51.100.9")], "198.51.100.9"),
    ([("Forwarded", "For=198.51.100.9")], "198.51.100.9"),
    ([("Forwarded", "for=unknown")], None),
    ([("Forwarded", "for=_hidden")], None),
    ([("Forwarded", "proto=https")], None),
    ([("X-Forwarded-For", "10.1.2.3"), ("Forwarded", "for=198.51.100.9")], "198.51.100.9"),  # XFF ignored
    ([("X-Forwarded-For", "10.1.2.3")], "10.0.0.1"),  # only XFF: as if no header, the peer
]


@pytest.mark.parametrize(("pairs", "client"), FORWARDED_CASES)
def test_forwarded_named_reads_only_forwarded(pairs, client):
    resolver = ClientIPResolver(PROXIES, "Forwarded")
    assert resolver.resolve("10.0.0.1", headers(*pairs)) == (ip(client), True)


@pytest.mark.parametrize(
    ("name", "pairs", "client"),
    [
        (
            "X-Real-IP",
            [("X-Real-IP", "198.51.100.9"), ("X-Forwarded-For", "10.1.2.3"), ("Forwarded", "for=10.1.2.3")],
            "198.51.100.9",
        ),
        ("X-Real-IP", [("X-Forwarded-For", "10.1.2.3")], "10.0.0.1"),
        ("X-Real-IP", [("X-Real-IP", "garbage")], None),
        ("X-Real-IP", [("X-Real-IP", "10.1.2.3, 198.51.100.9")], "198.51.100.9"),  # read like a one-hop list
        ("X-Client-Address", [("X-Client-Address", "198.51.100.9"), ("X-Real-IP", "10.1.2.3")], "198.51.100.9"),
        ("x-forwarded-for", [("X-Forwarded-For", "198.51.100.9"), ("Forwarded", "for=10.1.2.3")], "198.51.100.9"),
    ],
)
def test_only_the_named_client_address_header_is_read(name, pairs, client):
    resolver = ClientIPResolver(PROXIES, name)
    assert resolver.resolve("10.0.0.1", headers(*pairs)) == (ip(client), True)


def test_the_named_header_from_an_untrusted_peer_is_ignored_too():
    resolver = ClientIPResolver(PROXIES, "Forwarded")
    assert resolver.resolve("203.0.113.5", headers(("Forwarded", "for=10.0.0.9"))) == (ip("203.0.113.5"), False)


def test_without_trusted_proxies_headers_are_never_read():
    resolver = ClientIPResolver([])
    assert resolver.resolve("10.0.0.1", headers(("X-Forwarded-For", "1.2.3.4"))) == (ip("10.0.0.1"), False)


def test_plain_dict_headers_are_read_case_insensitively():
    resolver = ClientIPResolver(PROXIES)
    assert resolver.resolve("10.0.0.1", {"x-forwarded-for": "198.51.100.9"}) == (ip("198.51.100.9"), True)


def test_overlong_chains_give_an_unknown_client():
    chain = ", ".join(["198.51.100.9"] * 100)
    resolver = ClientIPResolver(PROXIES)
    assert resolver.resolve("10.0.0.1", headers(("X-Forwarded-For", chain))) == (None, True)


def test_bad_cidr_is_refused_at_construction():
    with pytest.raises(ValueError):
        ClientIPResolver(["10.0.0.0/33"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("1.2.3.4:80", "1.2.3.4"),
        ("[::1]:80", "::1"),
        ('"[::1]"', "::1"),
        ("[::1", None),
        ("[::1]x", None),
        ("1.2.3", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_ip_accepts_the_forms_proxies_write(text, expected):
    assert parse_ip(text) == ip(expected)
