"""Who is the client: the TCP peer, unless the peer is a proxy we trust.

Anyone can send ``X-Forwarded-For: 10.20.0.7``; only a trusted proxy's word counts. So:

* peer not in ``trusted_proxies``: the peer *is* the client; forwarding headers are ignored.
* peer trusted: read the ONE header the trusted proxy writes (``client_address_header`` in the
  settings, default ``X-Forwarded-For``) and walk it from the right, skipping trusted hops; the
  first untrusted address is the client. Addresses further left were written by the client itself
  and are never believed. If every hop is trusted, the left-most is the client (a request that
  started inside the trusted network).
* a trusted peer without that header: the peer is the client (e.g. a health check).

Only the named header is read; every other forwarding header is ignored, whatever it says. Reading
"X-Forwarded-For, else Forwarded" let a client's own ``X-Forwarded-For`` (passed through by a
proxy that writes ``Forwarded``) beat the proxy's word. ``Forwarded`` is read as RFC 7239 (the
``for=`` of each element); any other name (``X-Forwarded-For``, ``X-Real-IP``, an operator's header)
as a comma-separated list of addresses, of which a single address is the one-hop case.

Fail closed: when the walk meets something that is not an address (garbage, ``unknown``, an
obfuscated ``_hidden`` node) before it finds the client, the client is *unknown* (None), not the
proxy's own address -- the proxy usually sits inside the office network, so "falling back to the
peer" would hand every such request an office address. Unknown facts never grant access.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from gateway.model import IPAddress

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAX_HOPS = 64  # a longer chain is not a real proxy chain; refuse to spend time on it


def parse_ip(text: str | None) -> IPAddress | None:
    """An address as a proxy may write it: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``"[::1]"``."""
    if not text:
        return None
    if len(text) <= _CACHED_LENGTH:
        return _parse_ip_cached(text)
    return _parse_ip(text)


# Why a cache: every request parses its TCP peer (and, behind a proxy, the forwarding hops), always
# the same few addresses; ipaddress parsing cost ~20 us a request. Addresses are immutable. Only
# short texts are cached (an address with a port fits in 64), so junk headers cannot fill memory.
_CACHED_LENGTH = 64


@functools.lru_cache(maxsize=16384)
def _parse_ip_cached(text: str) -> IPAddress | None:
    return _parse_ip(text)


@functools.lru_cache(maxsize=16384)
def ip_text(ip: IPAddress) -> str:
    """``str(ip)``, cached: ipaddress formats the address afresh on every call (~2 us), and a request
    needs its client's address as text three times (Flow, X-Forwarded-For, the audit line)."""
    return str(ip)


def _parse_ip(text: str) -> IPAddress | None:
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1, for trust checks and for rules
    return ip


def peer_in(remote: str | None, networks: Iterable[IPNetwork]) -> bool:
    """Is the TCP peer (never a forwarded header) inside one of ``networks``? For admin endpoints."""
    peer = parse_ip(remote)
    return peer is not None and any(peer in net for net in networks)


def _header_values(headers: Any, name: str) -> list[str]:
    """Every value of a header (several header lines are one comma-joined list, RFC 9110)."""
    if headers is None:
        return []
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    return [v for k, v in headers.items() if k.lower() == name.lower()]


def _xff_hops(values: list[str]) -> list[str]:
    return [hop.strip() for value in values for hop in value.split(",")]


def _forwarded_hops(values: list[str]) -> list[str]:
    """The ``for=`` of each Forwarded element; an element without one is an unknown hop."""
    hops = []
    for value in values:
        for element in value.split(","):
            found = ""
            for pair in element.split(";"):
                key, _, val = pair.strip().partition("=")
                if key.strip().lower() == "for":
                    found = val.strip()
            hops.append(found)
    return hops


DEFAULT_HEADER = "X-Forwarded-For"


class ClientIPResolver:
    def __init__(self, trusted_proxies: Iterable[str] = (), header: str = DEFAULT_HEADER):
        # strict=False like gateway.settings: "10.0.0.1/8" means 10.0.0.0/8.
        self.trusted = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in trusted_proxies)
        self.header = header
        self._hops = _forwarded_hops if header.lower() == "forwarded" else _xff_hops

    def is_trusted(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.trusted)

    def resolve(self, peer: str | None, headers: Any) -> tuple[IPAddress | None, bool]:
        """Return ``(client address or None when unknown, whether the peer is a trusted proxy)``."""
        peer_ip = parse_ip(peer)
        if peer_ip is None:
            return None, False
        if not self.trusted or not self.is_trusted(peer_ip):
            return peer_ip, False
        values = _header_values(headers, self.header)
        if not any(v.strip() for v in values):
            return peer_ip, True
        hops = self._hops(values)
        if len(hops) > _MAX_HOPS:
            return None, True
        client: IPAddress | None = None
        for hop in reversed(hops):
            ip = parse_ip(hop)
            if ip is None:
                return None, True  # garbage before the client: unknown, never the proxy
            client = ip
            if not self.is_trusted(ip):
                return ip, True
        return client, True  # every hop trusted: the left-most started the request
