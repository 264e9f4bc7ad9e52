"""Country of an address: embedded database, optional MaxMind file, static overrides."""

from __future__ import annotations

import ipaddress
import sys

import pytest

from gateway.context.geo import GeoConfigError, GeoResolver


@pytest.fixture(scope="module")
def geo() -> GeoResolver:
    return GeoResolver()


COUNTRIES = [
    ("8.8.8.8", "US"),
    ("1.1.1.1", "AU"),
    ("2001:4860:4860::8888", "US"),
    ("::ffff:8.8.8.8", "US"),
    ("10.1.2.3", None),  # private
    ("127.0.0.1", None),  # loopback
    ("169.254.1.1", None),  # link-local
    ("::1", None),
    ("192.0.2.1", None),  # documentation range
    ("not an ip", None),
    (None, None),
]


@pytest.mark.parametrize(("address", "country"), COUNTRIES)
def test_embedded_database_answers_offline(geo, address, country):
    assert geo.country(address) == country


def test_accepts_address_objects(geo):
    assert geo.country(ipaddress.ip_address("8.8.8.8")) == "US"


def test_overrides_win_and_most_specific_network_first():
    geo = GeoResolver(overrides={"10.0.0.0/8": "fr", "10.20.0.0/16": "CN", "8.8.8.0/24": "DE"})
    assert geo.country("10.20.1.1") == "CN"
    assert geo.country("10.1.1.1") == "FR"
    assert geo.country("8.8.8.8") == "DE"
    assert geo.country("8.8.4.4") == "US"


@pytest.mark.parametrize("overrides", [{"10.0.0.0/33": "FR"}, {"10.0.0.0/8": "France"}, {"10.0.0.0/8": "F1"}])
def test_bad_overrides_are_a_configuration_error(overrides):
    with pytest.raises(GeoConfigError):
        GeoResolver(overrides=overrides)


def test_results_are_cached_in_a_bounded_lru():
    geo = GeoResolver(cache_size=2)
    for address in ("8.8.8.8", "8.8.8.8", "1.1.1.1", "9.9.9.9"):
        geo.country(address)
    info = geo.cache_info()
    assert (info.hits, info.maxsize, info.currsize) == (1, 2, 2)


def test_mmdb_without_the_maxminddb_package_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "maxminddb", None)  # import now raises ImportError
    with pytest.raises(GeoConfigError, match="maxminddb"):
        GeoResolver(mmdb_path=str(tmp_path / "GeoLite2-Country.mmdb"))
