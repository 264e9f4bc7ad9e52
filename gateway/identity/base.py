"""What every authenticator shares: the protocol, and the few header helpers they all need.

An authenticator answers one question for one kind of credential (Oathkeeper's authenticators are
the model): ``None`` when its kind of credential is absent, an :class:`~gateway.model.Identity`
when it is present and valid, and :class:`~gateway.errors.Unauthenticated` when it is present but
bad. Absent and bad must never be confused: a bad credential stops the chain instead of falling
through to a weaker one. Authenticators are synchronous because they run on every request.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Protocol

from gateway.errors import Unauthenticated
from gateway.identity.directory import Directory
from gateway.model import Identity, User

# ``amr`` values (RFC 8176) that prove a second factor or a phishing-resistant key.
MFA_AMR_VALUES = frozenset({"mfa", "otp", "hwk", "swk", "totp", "webauthn"})

# Three base64url segments; the last (signature) may be empty, as in ``alg: none`` tokens, which
# must be recognised as JWTs so that they are refused loudly rather than treated as opaque tokens.
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

MAX_CREDENTIAL_LENGTH = 8192  # bounds what the token cache may hold per entry


class Authenticator(Protocol):
    name: str

    def authenticate(self, headers: Mapping[str, str], peer_trusted: bool, directory: Directory) -> Identity | None: ...


def header_value(headers: Mapping[str, str], name: str, reason: str) -> str | None:
    """The single value of header ``name`` (case-insensitive), or None when absent.

    A header sent twice is ambiguous (which one would the CRM see?), so it is refused with
    ``reason`` rather than guessed. aiohttp's CIMultiDictProxy answers ``getall`` directly; a plain
    mapping (tests, tools) is scanned case-insensitively.
    """
    getall = getattr(headers, "getall", None)
    values: list[str]
    if getall is not None:
        values = getall(name, [])
    else:
        lowered = name.lower()
        values = [v for k, v in headers.items() if k.lower() == lowered]
    if not values:
        return None
    if len(values) > 1:
        raise Unauthenticated(reason, f"header {name} sent {len(values)} times")
    return values[0]


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None when there is no Bearer credential.

    Other schemes (Basic, ...) are not ours: None, so the stage ends with ``unauthenticated``.
    """
    value = header_value(headers, "Authorization", "token-invalid")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    # ``split()`` with no separator splits on any Unicode whitespace, like str.isspace, but in C:
    # this runs on every request, and a per-character generator cost ~100 µs on a 700-byte JWT.
    if not token or len(token) > MAX_CREDENTIAL_LENGTH or len(token.split()) != 1:
        raise Unauthenticated("token-invalid", "empty, oversized or malformed bearer token")
    return token


def looks_like_jwt(token: str) -> bool:
    return _JWT_SHAPE.fullmatch(token) is not None


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def mfa_from_amr(claims: Mapping[str, Any]) -> bool:
    """True when the token's ``amr`` claim names a multi-factor method (a list, or one string)."""
    amr = claims.get("amr")
    if isinstance(amr, str):
        amr = [amr]
    if not isinstance(amr, list):
        return False
    return any(isinstance(v, str) and v.lower() in MFA_AMR_VALUES for v in amr)


def lookup_user(directory: Directory, user_id: Any) -> User:
    """The directory user named by a credential; ``user-unknown`` when there is none.

    Done on every request, never cached with the credential: off-boarding a user in users.yaml
    must take effect at the next request even for tokens that are still valid.
    """
    user = directory.get(user_id) if isinstance(user_id, str) else None
    if user is None:
        raise Unauthenticated("user-unknown", f"no directory user {user_id!r}")
    return user


def match_user(directory: Directory, attribute: str, value: Any) -> User:
    """The one directory user whose ``attribute`` equals the name a credential carries.

    ``attribute`` is what the identity settings declare for this credential (``user_attribute``):
    ``id``, ``email`` or a custom attribute such as ``crm_user_id``. No match is ``user-unknown``;
    more than one is ``user-ambiguous``: guessing which of two users a token means would hand one
    of them the other's access. Looked up on every request, like :func:`lookup_user`.
    """
    if attribute == "id":
        return lookup_user(directory, value)
    found = directory.find(attribute, value) if isinstance(value, str) and value else ()
    if len(found) == 1:
        return found[0]
    if not found:
        raise Unauthenticated("user-unknown", f"no directory user with {attribute} {value!r}")
    ids = ", ".join(sorted(u.id for u in found))
    raise Unauthenticated("user-ambiguous", f"{attribute} {value!r} names {len(found)} users: {ids}")
