"""Who is using the console: the token cookie, the identity stage, CSRF tokens and the Origin check.

Browsers cannot send a bearer header, so the login page takes the analyst's token and keeps it in
an HttpOnly, SameSite=Strict cookie, signed with the console secret (a cookie the gateway did not
issue is ignored). On every request the token is presented to the gateway's own identity stage as
``Authorization: Bearer ...`` (``Services.authenticate_admin``), so an expired token, an off-boarded
user or a role removed from the directory take effect at once. A client that sends its own
``Authorization`` header, or a trusted SSO header from a trusted proxy, is identified the same way.

CSRF (state-changing requests are POST only):

* a synchroniser token in every form: ``HMAC(secret, "csrf|" + session fingerprint)``, where the
  fingerprint is a hash of the credential (cookie token, bearer header or SSO user) -- bound to the
  session, never stored, useless to anyone without the secret;
* and the request's ``Origin`` (or, without one, its ``Referer``) must be the console's own origin
  or one listed in ``allowed_origins``; a POST carrying neither is refused (fail closed).

The console's own origin is the scheme and ``Host`` the browser used. Behind a reverse proxy the
proxy must pass the client's ``Host`` on (nginx: ``proxy_set_header Host $http_host``) and say the
scheme in ``X-Forwarded-Proto``; that header is believed only from a trusted proxy (the TCP peer in
``trusted_proxies``), and it also decides the cookies' ``Secure`` flag.

The login form itself is protected by a signed nonce cookie (login CSRF).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.model import Identity

SESSION_COOKIE = "crmgw_console"
LOGIN_COOKIE = "crmgw_console_login"
MAX_TOKEN = 8192


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclasses.dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated analyst of one console request."""

    identity: Identity
    fingerprint: str  # hash of the credential this request came with
    csrf: str
    tz: ZoneInfo

    @property
    def user(self) -> str:
        return self.identity.user.id


def zone_named(name: str | None) -> ZoneInfo:
    """A directory user's time zone; UTC when unset or unknown (dates are then labelled UTC)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class Sessions:
    def __init__(
        self,
        secret: bytes,
        *,
        max_age: int,
        allowed_origins: list[str],
        path: str = "/",
        proxy_trusted: Callable[[str | None], bool] | None = None,
    ):
        self._secret = secret
        # Is this TCP peer a trusted proxy (whose X-Forwarded-Proto is believed)? None: no proxy is.
        self._proxy_trusted = proxy_trusted
        # The cookie goes only to the console's own paths: never to the proxied CRM routes, whose
        # request headers (Cookie included) the gateway forwards upstream.
        self.path = path
        self.max_age = max_age
        self.allowed_origins = frozenset(allowed_origins)

    def _mac(self, *parts: str) -> bytes:
        return hmac.new(self._secret, "|".join(parts).encode(), hashlib.sha256).digest()

    # --- the session cookie -----------------------------------------------------------------
    def seal(self, token: str, now: float | None = None) -> str:
        issued = str(int(now if now is not None else time.time()))
        return ".".join((_b64(token.encode()), issued, _b64(self._mac("session", token, issued))))

    def unseal(self, value: str, now: float | None = None) -> str | None:
        """The token in a cookie this console issued and that has not expired; else None."""
        try:
            token_b64, issued, mac = value.split(".")
            token = _unb64(token_b64).decode()
            age = (now if now is not None else time.time()) - int(issued)
            good = hmac.compare_digest(_unb64(mac), self._mac("session", token, issued))
        except (ValueError, UnicodeDecodeError):
            return None
        return token if good and 0 <= age <= self.max_age else None

    def scheme(self, request: web.Request) -> str:
        """The scheme the browser used: a trusted proxy's ``X-Forwarded-Proto``, else the connection's.

        A list (``https, http``: proxies that append) counts by its last entry, the one the trusted
        peer wrote itself; anything but http/https is ignored."""
        if self._proxy_trusted is not None and self._proxy_trusted(request.remote):
            said = request.headers.get("X-Forwarded-Proto", "").rsplit(",", 1)[-1].strip().lower()
            if said in ("http", "https"):
                return said
        return request.scheme

    def secure(self, request: web.Request) -> bool:
        """Should cookies be ``Secure``: the browser talks https to us or to our trusted proxy."""
        return self.scheme(request) == "https"

    def set_session(self, response: web.StreamResponse, request: web.Request, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self.seal(token),
            max_age=self.max_age,
            path=self.path,
            httponly=True,
            samesite="Strict",
            secure=self.secure(request),
        )

    def clear_session(self, response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path=self.path)

    # --- who is asking ------------------------------------------------------------------------
    def credential(self, request: web.Request) -> tuple[web.Request, str]:
        """The request as the identity stage should see it, and the credential's fingerprint."""
        header = request.headers.get("Authorization")
        if header:
            return request, _fp("header", header)
        token = self.unseal(request.cookies.get(SESSION_COOKIE, ""))
        if token is None:
            # Maybe a trusted SSO header: the identity stage decides; bound to its values.
            return request, _fp(
                "ambient",
                repr(sorted((k.lower(), v) for k, v in request.headers.items() if k.lower().startswith("x-"))),
            )
        return with_bearer(request, token), _fp("cookie", token)

    def viewer(self, identity: Identity, fingerprint: str) -> Viewer:
        # An SSO-header session is bound to the user it names.
        if fingerprint.startswith("ambient:"):
            fingerprint = _fp("sso", identity.user.id)
        return Viewer(identity, fingerprint, self.csrf_token(fingerprint), zone_named(identity.user.timezone))

    # --- CSRF -----------------------------------------------------------------------------------
    def csrf_token(self, fingerprint: str) -> str:
        return _b64(self._mac("csrf", fingerprint))

    def csrf_ok(self, viewer: Viewer, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(str(submitted), viewer.csrf)

    def login_nonce(self) -> tuple[str, str]:
        """(cookie value, form token) for the login form."""
        nonce = secrets.token_urlsafe(16)
        return nonce, _b64(self._mac("login", nonce))

    def login_ok(self, request: web.Request, submitted: str | None) -> bool:
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        return bool(nonce and submitted) and hmac.compare_digest(str(submitted), _b64(self._mac("login", nonce)))

    def same_origin(self, request: web.Request) -> bool:
        """The POST comes from a page of this console (Origin, else Referer); neither: refused."""
        own = f"{self.scheme(request)}://{request.host}"
        origin = request.headers.get("Origin")
        if origin is None:
            referer = request.headers.get("Referer")
            if not referer:
                return False
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
        return origin == own or origin in self.allowed_origins


class _WithBearer:
    """The request as the identity stage should see it: every attribute of the real request, but
    headers with ``Authorization: Bearer <token>``. (``Request.clone`` refuses once a form was read.)"""

    def __init__(self, request: web.Request, token: str):
        headers = CIMultiDict(request.headers)
        headers["Authorization"] = f"Bearer {token}"
        self.headers = CIMultiDictProxy(headers)
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def with_bearer(request: web.Request, token: str) -> web.Request:
    return _WithBearer(request, token)  # type: ignore[return-value]


def _fp(kind: str, value: str) -> str:
    return f"{kind}:" + hashlib.sha256(value.encode()).hexdigest()[:32]
