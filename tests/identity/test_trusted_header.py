"""X-Authenticated-User: honoured from a trusted SSO proxy only."""

from __future__ import annotations

import pytest

from gateway.errors import Unauthenticated
from gateway.identity.trusted_header import TrustedHeaderAuthenticator


@pytest.mark.parametrize("peer_trusted, expected", [(True, "dave"), (False, None)])
def test_header_counts_only_from_a_trusted_peer(directory, peer_trusted, expected):
    identity = TrustedHeaderAuthenticator().authenticate({"X-Authenticated-User": "dave"}, peer_trusted, directory)
    assert (identity.user.id if identity else None) == expected
    if identity:
        assert identity.method == "trusted_header" and identity.mfa is False


def test_absent_header_is_none(directory):
    assert TrustedHeaderAuthenticator().authenticate({}, True, directory) is None


@pytest.mark.parametrize("value", ["mallory", "", "  "])
def test_unknown_user_from_trusted_peer_is_refused(directory, value):
    with pytest.raises(Unauthenticated) as info:
        TrustedHeaderAuthenticator().authenticate({"X-Authenticated-User": value}, True, directory)
    assert info.value.reason == "user-unknown"


@pytest.mark.parametrize(
    "flag, peer_trusted, mfa",
    [("true", True, True), ("1", True, True), ("false", True, False), (None, True, False)],
)
def test_optional_mfa_header(directory, flag, peer_trusted, mfa):
    auth = TrustedHeaderAuthenticator(mfa_header="X-Authenticated-MFA")
    headers = {"X-Authenticated-User": "dave"} | ({"X-Authenticated-MFA": flag} if flag else {})
    assert auth.authenticate(headers, peer_trusted, directory).mfa is mfa


def test_mfa_header_is_ignored_unless_configured(directory):
    headers = {"X-Authenticated-User": "dave", "X-Authenticated-MFA": "true"}
    assert TrustedHeaderAuthenticator().authenticate(headers, True, directory).mfa is False
