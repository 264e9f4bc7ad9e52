"""What a running democrm keeps under its application's keys.

Kept apart from ``democrm.app`` so the handlers and the middlewares can share the keys without
importing each other. ``democrm.app`` re-exports ``REQUESTS_SEEN`` and ``SeenRequest``.
"""

from __future__ import annotations

import collections
import dataclasses

from aiohttp import web

from democrm.store import Store

SEEN_LIMIT = 2000  # requests kept in REQUESTS_SEEN
SEEN_BODY_LIMIT = 256 * 1024  # bytes of each body kept; a bulk import must not pin megabytes x 2000


@dataclasses.dataclass(frozen=True, slots=True)
class SeenRequest:
    """One request exactly as it reached the CRM (after any proxy in front of it).

    ``raw_path`` is the request target's path as sent, still percent-encoded; ``query_string`` is
    the raw, undecoded query (without ``?``). ``headers`` keeps the header names as sent (a repeated
    header's values are joined with ", "); use :meth:`header` for a case-insensitive look-up and
    ``raw_headers`` to see repeats and order.
    """

    method: str
    raw_path: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    raw_headers: tuple[tuple[str, str], ...] = ()
    body_truncated: bool = False

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class CrmConfig:
    service_token: str
    jwt_secret: str
    gzip: bool


STORE = web.AppKey("STORE", Store)
CONFIG = web.AppKey("CONFIG", CrmConfig)
REQUESTS_SEEN = web.AppKey("REQUESTS_SEEN", collections.deque)  # deque[SeenRequest], maxlen=SEEN_LIMIT
SETTINGS = web.AppKey("SETTINGS", dict)  # what POST /api/admin/settings stored, for tests to inspect


def new_requests_seen() -> collections.deque[SeenRequest]:
    return collections.deque(maxlen=SEEN_LIMIT)


class CrmError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
