"""X-API-Key: looked up by its sha256 in the directory."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.errors import Unauthenticated
from gateway.identity.api_key import ApiKeyAuthenticator


def test_known_key_gives_its_service_account(directory):
    identity = ApiKeyAuthenticator().authenticate({"X-API-Key": "demo-reporting-key"}, False, directory)
    assert identity.user.id == "svc-reporting"
    assert identity.method == "api_key"
    assert identity.forward_credential is False


def test_header_name_is_case_insensitive_and_configurable(directory):
    assert ApiKeyAuthenticator().authenticate({"x-api-key": "demo-reporting-key"}, False, directory)
    auth = ApiKeyAuthenticator("X-Service-Key")
    assert auth.authenticate({"X-Service-Key": "demo-reporting-key"}, False, directory).user.id == "svc-reporting"
    assert auth.authenticate({"X-API-Key": "demo-reporting-key"}, False, directory) is None


def test_absent_key_is_none(directory):
    assert ApiKeyAuthenticator().authenticate({"Authorization": "Bearer x"}, False, directory) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "wrong-key"},
        {"X-API-Key": ""},
        {"X-API-Key": "a" * 10_000},
        # the stored hash itself is not the key
        {"X-API-Key": "a931f839ac8199cbc4e143b8e132ed81524b2abfa181920baba35016a40f61c1"},
        CIMultiDict([("X-API-Key", "demo-reporting-key"), ("X-API-Key", "demo-reporting-key")]),
    ],
)
def test_bad_keys_are_refused(directory, headers):
    with pytest.raises(Unauthenticated) as info:
        ApiKeyAuthenticator().authenticate(headers, False, directory)
    assert info.value.reason == "api-key-invalid"
