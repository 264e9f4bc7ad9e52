"""Session cookie sealing, CSRF tokens and the Origin check, without a server."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway.console.config import ConsoleConfig
from gateway.console.session import Sessions

SECRET = b"s" * 32


@pytest.fixture
def sessions():
    return Sessions(SECRET, max_age=3600, allowed_origins=["https://gw.example"])


def test_a_sealed_token_comes_back(sessions):
    assert sessions.unseal(sessions.seal("tok.en-1", now=1000), now=1500) == "tok.en-1"


@pytest.mark.parametrize(
    "mutate",
    [lambda v: v[:-2] + "AA", lambda v: "X" + v[1:], lambda v: v.replace(".", "", 1), lambda v: "", lambda v: "a.b.c"],
)
def test_a_tampered_cookie_is_ignored(sessions, mutate):
    assert sessions.unseal(mutate(sessions.seal("token", now=1000)), now=1001) is None


def test_an_old_cookie_is_ignored(sessions):
    assert sessions.unseal(sessions.seal("token", now=1000), now=1000 + 3601) is None


def test_another_secret_does_not_accept_the_cookie(sessions):
    other = Sessions(b"o" * 32, max_age=3600, allowed_origins=[])
    assert other.unseal(sessions.seal("token", now=1000), now=1001) is None


def test_csrf_tokens_are_bound_to_the_session(sessions):
    assert sessions.csrf_token("cookie:a") != sessions.csrf_token("cookie:b")
    assert sessions.csrf_token("cookie:a") == sessions.csrf_token("cookie:a")


@pytest.mark.parametrize(
    "headers,ok",
    [
        ({"Origin": "http://gw.local:8080"}, True),
        ({"Origin": "https://gw.example"}, True),  # configured (behind a TLS proxy)
        ({"Origin": "http://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Referer": "http://gw.local:8080/_gw/console/alerts"}, True),
        ({"Referer": "http://gw.local:8080.evil.example/"}, False),
        ({}, False),
    ],
)
def test_the_origin_check(sessions, headers, ok):
    request = make_mocked_request("POST", "/_gw/console/logout", headers={"Host": "gw.local:8080", **headers})
    assert sessions.same_origin(request) is ok


def test_a_short_configured_secret_is_refused(monkeypatch):
    monkeypatch.setenv("CRMGW_CONSOLE_SECRET", "short")
    with pytest.raises(ValueError, match="at least 32"):
        ConsoleConfig().secret()


def test_without_a_configured_secret_each_start_gets_a_random_one(monkeypatch):
    monkeypatch.delenv("CRMGW_CONSOLE_SECRET", raising=False)
    assert ConsoleConfig().secret() != ConsoleConfig().secret()


def test_the_config_refuses_unknown_keys():
    with pytest.raises(ValueError):
        ConsoleConfig.model_validate({"rolez": ["admin"]})
