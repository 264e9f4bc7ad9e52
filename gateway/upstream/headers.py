"""Header hygiene in both directions.

Towards the CRM, nothing the client says about identity or its network position survives: hop-by-hop
headers (and every header named in ``Connection``, so ``Connection: X-CRM-User`` cannot smuggle one
past us), the identity headers the gateway reads, X-Forwarded-*/Forwarded/X-Real-IP, the headers
the gateway itself sets for the CRM, method overrides, and the caller's credential and cookies unless
the caller used the CRM's own login (then it is forwarded unchanged so the CRM applies its checks).
Then the gateway adds the verified identity, the client address and the request id.

Header names are compared with ``_`` read as ``-``: CGI/WSGI servers (and PHP, and some Java
frameworks) expose ``X_CRM_User`` and ``X-CRM-User`` as the same ``HTTP_X_CRM_USER``, so a client
copy spelt with underscores would otherwise slip past the strip list and sit next to (or override)
the identity the gateway sets (the Django/WSGI header-spoofing class, CVE-2015-0219).
"""

from __future__ import annotations

import functools
from typing import Iterable, Mapping

from multidict import CIMultiDict

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
SPOOFABLE = frozenset(
    {
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-forwarded-server",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "forwarded",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "x-original-url",
        "x-rewrite-url",
        "x-original-uri",
        "x-request-id",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "host",
        "content-length",
        "expect",
        # A partial body defeats the response filter: a CSV cut by ``Range: bytes=N-`` starts with a
        # data row, which then reads as the header, so no column is named ``phone`` any more and the
        # masks find nothing to mask. The gateway always asks the CRM for whole bodies.
        "range",
        "if-range",
        # aiohttp's server inflates gzip/deflate request bodies before the gateway reads them; the
        # inflated bytes are what was checked and what is forwarded, so the label must go too.
        "content-encoding",
    }
)
# Encodings the response filter can decode; anything else the client asked for is not passed on.
DECODABLE = ("gzip", "deflate")


def folded(name: str) -> str:
    """A header name as a CGI/WSGI server reads it: case-insensitive, ``_`` the same as ``-``."""
    return name.lower().replace("_", "-")


def connection_named(headers: Mapping[str, str]) -> set[str]:
    named: set[str] = set()
    for value in headers.getall("connection", ()) if hasattr(headers, "getall") else [headers.get("connection", "")]:
        for token in value.split(","):
            token = folded(token.strip())
            if token:
                named.add(token)
    return named


def accept_encoding(client_value: str | None) -> str:
    """The client's Accept-Encoding reduced to what the gateway can decode itself."""
    if not client_value:
        return "identity"
    wanted = []
    for part in client_value.split(","):
        token = part.split(";", 1)[0].strip().lower()
        if token in DECODABLE and ";q=0" not in part.replace(" ", "") and token not in wanted:
            wanted.append(token)
    return ", ".join(wanted) if wanted else "identity"


def upstream_request_headers(
    client: Mapping[str, str],
    *,
    strip: Iterable[str],
    keep_credential: bool,
    add: Mapping[str, str],
) -> CIMultiDict:
    """Headers for the CRM: the client's, minus everything spoofable, plus ``add``."""
    drop = _fixed_drop(frozenset(strip), tuple(add), keep_credential)
    named = connection_named(client)
    if keep_credential:
        named -= {"authorization", "cookie"}  # as in _fixed_drop: the CRM's own login goes through
    out = CIMultiDict()
    for name, value in client.items():
        name_f = folded(name)
        if name_f not in drop and name_f not in named:
            out.add(name, value)
    out["Accept-Encoding"] = accept_encoding(client.get("accept-encoding"))
    for name, value in add.items():
        out[name] = value
    return out


@functools.lru_cache(maxsize=256)
def _fixed_drop(strip: frozenset[str], add: tuple[str, ...], keep_credential: bool) -> frozenset[str]:
    """The request-independent part of the strip list, built once per (strip, add, credential).

    Why: the set was rebuilt from ~45 names on every request (~15 us); its inputs are the gateway's
    settings and the names of the headers it adds, which are the same for every request.
    """
    drop = set(HOP_BY_HOP) | SPOOFABLE | {folded(h) for h in strip} | {folded(h) for h in add}
    if keep_credential:
        drop -= {"authorization", "cookie"}  # the CRM's own login: it must see it unchanged
    else:
        drop |= {"authorization", "cookie"}
    return frozenset(drop)


def client_response_headers(upstream: Mapping[str, str], *, body_rewritten: bool) -> CIMultiDict:
    """Headers for the client: the CRM's minus hop-by-hop; length/encoding dropped when rewritten."""
    drop = set(HOP_BY_HOP) | connection_named(upstream) | {"content-length"}
    if body_rewritten:
        drop |= {"content-encoding", "etag", "content-md5", "digest"}
    out = CIMultiDict()
    for name, value in upstream.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out
