"""What a verified token's claims must say before it names anyone: the user claim, required claims.

Both checks run after the signature is verified and before the claims are cached, so a token that
fails them is never cached and one that passes them stays valid for its lifetime (claims do not
change; the directory lookup that follows is done on every request).

``require`` compares exact JSON values, types included: ``org_id: "42"`` is not ``org_id: 42``,
and ``true`` is not ``1`` (Python would say it is). A list in the settings means "any of these".
A claim whose value is itself a list or an object never matches: "the token's org_id is acme"
must not become "acme is somewhere in the token's org_id".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import Unauthenticated

_SCALARS = (str, int, bool)


def user_name(claims: Mapping[str, Any], claim: str) -> str:
    """The user name the token carries in ``claim``: a non-empty string, or an integer (CRMs
    often name users by a numeric id, ``"user_id": 1001``), returned as text."""
    value = claims.get(claim)
    if type(value) is int:  # not bool, which is an int to Python
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise Unauthenticated("token-invalid", f"claim {claim!r} missing or not a string or integer")


def _same(actual: Any, expected: Any) -> bool:
    return type(actual) is type(expected) and actual == expected


def check_required(claims: Mapping[str, Any], require: Mapping[str, Any]) -> None:
    """Raise ``claim-mismatch`` unless every required claim holds one of its allowed values."""
    for claim, expected in require.items():
        allowed = expected if isinstance(expected, list) else [expected]
        if claim not in claims:
            raise Unauthenticated("claim-mismatch", f"required claim {claim!r} is missing")
        actual = claims[claim]
        if not isinstance(actual, _SCALARS) or not any(_same(actual, v) for v in allowed):
            raise Unauthenticated("claim-mismatch", f"claim {claim!r} is {actual!r}, not one of {allowed!r}")
