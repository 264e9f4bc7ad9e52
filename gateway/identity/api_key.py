"""``X-API-Key: <key>``: service accounts. Only the key's sha256 is in users.yaml."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import Unauthenticated
from gateway.identity.base import MAX_CREDENTIAL_LENGTH, header_value, lookup_user, sha256_hex
from gateway.identity.directory import Directory
from gateway.model import Identity


class ApiKeyAuthenticator:
    name = "api_key"

    def __init__(self, header: str = "X-API-Key"):
        self.header = header

    def authenticate(self, headers: Mapping[str, str], peer_trusted: bool, directory: Directory) -> Identity | None:
        value = header_value(headers, self.header, "api-key-invalid")
        if value is None:
            return None
        value = value.strip()
        if not value or len(value) > MAX_CREDENTIAL_LENGTH:
            raise Unauthenticated("api-key-invalid", "empty or oversized API key")
        # A dict lookup on the digest: comparing digests leaks nothing useful about the key.
        user_id = directory.api_keys.get(sha256_hex(value))
        if user_id is None:
            raise Unauthenticated("api-key-invalid", "unknown API key")
        return Identity(user=lookup_user(directory, user_id), method="api_key")
