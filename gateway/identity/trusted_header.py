"""``X-Authenticated-User: <id>`` set by an SSO proxy in front of the gateway.

Honoured only when the request comes from a trusted proxy (``peer_trusted``); from anyone else the
header is ignored here and stripped by the proxy stage, so a client cannot name itself. The value is
matched against the directory attribute ``user_attribute`` (``id`` by default; ``email`` when the
proxy passes the login e-mail).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.identity.base import header_value, match_user
from gateway.identity.directory import Directory
from gateway.model import Identity

_TRUE = frozenset({"true", "1", "yes"})


class TrustedHeaderAuthenticator:
    name = "trusted_header"

    def __init__(self, header: str = "X-Authenticated-User", mfa_header: str | None = None, user_attribute: str = "id"):
        self.header = header
        self.mfa_header = mfa_header
        self.user_attribute = user_attribute

    def authenticate(self, headers: Mapping[str, str], peer_trusted: bool, directory: Directory) -> Identity | None:
        if not peer_trusted:
            return None
        value = header_value(headers, self.header, "user-unknown")
        if value is None:
            return None
        user = match_user(directory, self.user_attribute, value.strip())
        mfa = False
        if self.mfa_header is not None:
            flag = header_value(headers, self.mfa_header, "user-unknown")
            mfa = flag is not None and flag.strip().lower() in _TRUE
        return Identity(user=user, method="trusted_header", mfa=mfa)
