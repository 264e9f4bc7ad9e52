"""Country of a client address, offline.

By default the database embedded in the ``iptocc`` package answers (no files to ship, no network);
a MaxMind ``.mmdb`` file can be configured instead (``maxminddb`` is imported only then). Static
``overrides`` (CIDR -> country) come first, most specific network winning: demos and tests pin
office or VPN ranges to a country without touching the database.

Private, loopback, link-local and other non-global addresses have no country (None), unless an
override names one. None means "unknown", and unknown never satisfies a country criterion.
Results are kept in a small bounded LRU cache: the same clients come back again and again.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from gateway.model import IPAddress

_COUNTRY = re.compile(r"^[A-Z]{2}$")


class GeoConfigError(RuntimeError):
    """The geo database cannot be used as configured (missing package, unreadable file)."""


def _iptocc_lookup() -> Callable[[str], str | None]:
    import iptocc

    return iptocc.country_code


def _mmdb_lookup(path: str) -> Callable[[str], str | None]:
    try:
        import maxminddb
    except ImportError:
        raise GeoConfigError(
            f"geo.mmdb is set to {path!r} but the 'maxminddb' package is not installed "
            "(pip install maxminddb), or remove geo.mmdb to use the embedded database"
        ) from None
    try:
        reader = maxminddb.open_database(path)
    except (OSError, ValueError) as exc:
        raise GeoConfigError(f"cannot open MaxMind database {path!r}: {exc}") from None

    def lookup(ip: str) -> str | None:
        record: Any = reader.get(ip)
        if not isinstance(record, dict):
            return None
        for key in ("country", "registered_country"):
            entry = record.get(key)
            code = entry.get("iso_code") if isinstance(entry, dict) else None
            if isinstance(code, str):
                return code
        return None

    return lookup


def _parse_overrides(overrides: Mapping[str, str]) -> tuple[tuple[Any, str], ...]:
    parsed = []
    for cidr, country in overrides.items():
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise GeoConfigError(f"geo override {cidr!r} is not an IP network") from None
        code = str(country).upper()
        if not _COUNTRY.match(code):
            raise GeoConfigError(f"geo override {cidr!r}: {country!r} is not a two-letter country code")
        parsed.append((network, code))
    parsed.sort(key=lambda item: item[0].prefixlen, reverse=True)  # most specific first
    return tuple(parsed)


class GeoResolver:
    def __init__(
        self,
        mmdb_path: str | None = None,
        overrides: Mapping[str, str] | None = None,
        cache_size: int = 4096,
    ):
        self.source = "mmdb" if mmdb_path else "iptocc"
        self._overrides = _parse_overrides(overrides or {})
        self._db = _mmdb_lookup(mmdb_path) if mmdb_path else _iptocc_lookup()
        self._cached = functools.lru_cache(maxsize=cache_size)(self._lookup)

    def country(self, ip: IPAddress | str | None) -> str | None:
        """ISO 3166-1 alpha-2 code of ``ip``, or None when unknown (never raises for bad input)."""
        if ip is None:
            return None
        if isinstance(ip, str):
            try:
                ip = ipaddress.ip_address(ip)
            except ValueError:
                return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return self._cached(ip)

    def _lookup(self, ip: IPAddress) -> str | None:
        for network, code in self._overrides:
            if ip.version == network.version and ip in network:
                return code
        if not ip.is_global:
            return None
        try:
            found = self._db(str(ip))
        except Exception:  # a broken database must not crash a request: unknown country
            return None
        if isinstance(found, str) and _COUNTRY.match(found.upper()):
            return found.upper()
        return None

    def cache_info(self) -> functools._CacheInfo:
        return self._cached.cache_info()
