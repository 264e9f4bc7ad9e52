"""Header hygiene in both directions.

Towards the CRM the client's headers are forwarded by **allow-list**: a CRM, or the framework under
it, may act on any ``X-Forwarded-*``, ``X-Original-*``, ``Remote-User``-style header it receives
(Django's REMOTE_USER middleware, Symfony's trusted-proxy headers, IIS's X-Original-URL...), and no
deny-list can name them all. Only these cross:

* the standard negotiation and entity headers in ``FORWARDED_BY_DEFAULT`` (see there for what is
  left out and why);
* the caller's ``Authorization``/``Cookie`` when the caller used the CRM's own login (then the CRM
  must see it unchanged and apply its own checks); otherwise never;
* the headers the operator names in ``upstream.forward_headers`` (validated at settings load:
  never one of ``NEVER_FORWARDED`` nor a header the gateway reads or writes itself);
* then the gateway adds its own: the verified identity, the client address it resolved
  (``X-Forwarded-For``), the request id, the service credential, and ``Accept-Encoding`` reduced to
  what the response filter can decode.

A header named in ``Connection`` is hop-by-hop, so it is dropped even when allow-listed
(``Connection: X-CRM-User`` can neither smuggle nor strip anything the gateway sets).

Header names are compared with ``_`` read as ``-``: CGI/WSGI servers (and PHP, and some Java
frameworks) expose ``X_CRM_User`` and ``X-CRM-User`` as the same ``HTTP_X_CRM_USER`` (the Django/WSGI
header-spoofing class, CVE-2015-0219). A client header whose name contains ``_`` is never forwarded
at all: to such a CRM it is a second copy of an allowed header, which one wins is the CRM's choice.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

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

# What any CRM needs to understand a request and answer in the client's language and format.
# Deliberately NOT here (an operator may add only the first group, never the rest):
#   Date, Origin, Referer, X-Requested-With, X-CSRF-Token...  a CRM that needs them is named in
#       upstream.forward_headers by the operator who knows it;
#   If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since  a 304 or 412 carries no record,
#       so the response filter cannot see what it answers about, and the status alone tells a
#       restricted caller that an out-of-scope record exists (404 vs 304/412: an existence oracle);
#   Range, If-Range  a partial body defeats the filter (a CSV cut by ``Range: bytes=N-`` starts with
#       a data row, which then reads as the header, so no column is named ``phone`` any more);
#   Content-Encoding  aiohttp inflates gzip/deflate request bodies before the gateway reads them;
#       the inflated bytes are what was checked and what is forwarded, so the label must go;
#   Host, Content-Length, Expect, Transfer-Encoding  aiohttp's client writes its own framing.
FORWARDED_BY_DEFAULT = frozenset(
    {
        "accept",
        "accept-charset",
        "accept-language",
        "cache-control",  # only ever makes an answer fresher
        "content-language",
        "content-type",  # only the first copy: it is the one the gateway decided the body on
        "pragma",
        "user-agent",
    }
)
CREDENTIALS = frozenset({"authorization", "cookie"})  # the CRM's own login: see keep_credential

# Names ``upstream.forward_headers`` refuses at settings load (gateway.settings), with the reason the
# operator is told. Headers the gateway itself reads or writes are refused there too, by their
# configured names.
NEVER_FORWARDED: dict[str, str] = {
    **dict.fromkeys(HOP_BY_HOP, "a hop-by-hop header"),
    **dict.fromkeys(("host", "content-length", "expect"), "framing the gateway's HTTP client writes itself"),
    **dict.fromkeys(CREDENTIALS, "the CRM's own login, forwarded only when the caller used it"),
    **dict.fromkeys(
        (
            "forwarded",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-forwarded-port",
            "x-forwarded-prefix",
            "x-forwarded-server",
            "x-forwarded-uri",
            "x-forwarded-path",
            "x-forwarded-user",
            "x-forwarded-email",
            "x-forwarded-groups",
            "x-real-ip",
            "x-client-ip",
            "client-ip",
            "true-client-ip",
            "cf-connecting-ip",
            "x-cluster-client-ip",
            "fastly-client-ip",
            "x-original-url",
            "x-original-uri",
            "x-rewrite-url",
            "x-original-host",
            "x-original-method",
            "x-envoy-original-path",
            "x-envoy-external-address",
            "remote-user",
            "remote-addr",
            "x-remote-user",
            "x-user",
        ),
        "a client's claim about its network position or the original request",
    ),
    "x-request-id": "the gateway's own request id",
    **dict.fromkeys(
        ("x-http-method-override", "x-http-method", "x-method-override"),
        "a method override (the gateway refuses these)",
    ),
    **dict.fromkeys(
        ("range", "if-range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since"),
        "it lets the CRM answer without a record the response filter can check",
    ),
    "content-encoding": "the gateway forwards the body aiohttp already decoded",
}

# Encodings the response filter can decode; anything else the client asked for is not passed on.
DECODABLE = ("gzip", "deflate")

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token (RFC 9110): what a header name may be


def folded(name: str) -> str:
    """A header name as a CGI/WSGI server reads it: case-insensitive, ``_`` the same as ``-``."""
    return name.lower().replace("_", "-")


def check_header_name(value: str) -> str:
    """A header name the gateway may be configured to write or forward (gateway.settings and
    gateway.upstream.attribution validate theirs with it); raises ValueError."""
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"not a header name: {value!r}")
    if "_" in value:
        raise ValueError(
            f"{value!r}: spell it with '-' (a header name with '_' is never forwarded: CGI/WSGI "
            "servers read it as the '-' spelling)"
        )
    return value


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
    forward: Iterable[str] = (),
) -> CIMultiDict[str]:
    """Headers for the CRM: the client's allow-listed ones, then ``add`` (the gateway's own).

    ``strip``: headers the gateway reads for identity, never forwarded (except the CRM's own
    credential when ``keep_credential``); ``forward``: the operator's extra names
    (``upstream.forward_headers``; none by default: fail closed).
    """
    extra = frozenset(forward)
    allowed = _allowed(extra, frozenset(strip), tuple(add), keep_credential)
    named = connection_named(client)
    if keep_credential:
        named -= CREDENTIALS  # the CRM's own login goes through even if named in Connection
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in client.items():
        key = name.lower()
        if key not in allowed or key in named or "_" in key:
            continue
        if key == "content-type" and key in out:
            continue  # the first copy is the one the gateway parsed; a second would be the CRM's pick
        out.add(name, value)
    out["Accept-Encoding"] = accept_encoding(client.get("accept-encoding"))
    for name, value in add.items():
        out[name] = value
    return out


@functools.lru_cache(maxsize=256)
def _allowed(
    forward: frozenset[str], strip: frozenset[str], add: tuple[str, ...], keep_credential: bool
) -> frozenset[str]:
    """The request-independent allow-list, built once per (operator list, strip, add, credential).

    Why cached: its inputs are the gateway's settings and the names of the headers it adds, which
    are the same for every request. ``NEVER_FORWARDED`` is subtracted again here so that a list
    that bypassed settings validation still cannot forward one of them.
    """
    operator = {folded(h) for h in forward} - NEVER_FORWARDED.keys()
    own = {folded(h) for h in strip} | {folded(h) for h in add}
    allowed = (FORWARDED_BY_DEFAULT | operator) - own
    if keep_credential:
        allowed |= CREDENTIALS
    return frozenset(allowed)


# Dropped from every answer, and also from one whose body the gateway rewrote (built once, not per answer).
_DROP_PASSED = HOP_BY_HOP | {"content-length"}
_DROP_REWRITTEN = _DROP_PASSED | {"content-encoding", "etag", "content-md5", "digest"}


def client_response_headers(upstream: Mapping[str, str], *, body_rewritten: bool) -> CIMultiDict[str]:
    """Headers for the client: the CRM's minus hop-by-hop; length/encoding dropped when rewritten."""
    drop = _DROP_REWRITTEN if body_rewritten else _DROP_PASSED
    named = connection_named(upstream)
    if named:
        drop = drop | named
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out
