"""Sending a decided request to the CRM, and reading its answer within bounds.

The URL is built from the *normalised* path the decision was made on, byte for byte
(``encoded=True`` stops yarl from re-quoting it), plus the raw query the client sent, so the CRM can
never see a different resource than the one the rules looked at.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from aiohttp import web
from yarl import URL

from gateway.errors import ObligationUnenforceable, UpstreamError, UpstreamTimeout

CHUNK = 64 * 1024


def make_session(
    *, connect_timeout: float, total_timeout: float, limit: int, limit_per_host: int
) -> aiohttp.ClientSession:
    """The one pooled ClientSession: explicit timeouts and limits, no cookie jar, raw bodies."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit_per_host, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout),
        cookie_jar=aiohttp.DummyCookieJar(),  # the gateway never keeps a caller's cookies
        auto_decompress=False,  # the response filter decodes itself, within a size cap
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )


def upstream_url(base: str, path: str, raw_query: str) -> URL:
    return URL(base + path + ("?" + raw_query if raw_query else ""), encoded=True)


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: URL,
    headers: Mapping[str, str],
    body: bytes | None,
) -> aiohttp.ClientResponse:
    """Send one request; redirects are returned to the caller, never followed."""
    try:
        return await session.request(method, url, headers=headers, data=body if body else None, allow_redirects=False)
    except TimeoutError as exc:
        raise UpstreamTimeout(detail=f"{method} {url.path}: timeout") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(detail=f"{method} {url.path}: {exc.__class__.__name__}: {exc}") from exc


async def read_bounded(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """Read the whole body, refusing (fail closed) one larger than ``max_bytes``."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise ObligationUnenforceable(detail=f"response body {resp.content_length} bytes > cap {max_bytes}")
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in resp.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise ObligationUnenforceable(detail=f"response body over cap {max_bytes}")
            parts.append(chunk)
    except TimeoutError as exc:
        raise UpstreamTimeout(detail="timeout reading response body") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(detail=f"reading response body: {exc}") from exc
    return b"".join(parts)


async def stream_to_client(request: web.Request, resp: aiohttp.ClientResponse, out: web.StreamResponse) -> int:
    """Copy the body chunk by chunk (no obligation needs it); returns bytes written."""
    await out.prepare(request)
    written = 0
    try:
        async for chunk in resp.content.iter_chunked(CHUNK):
            await out.write(chunk)
            written += len(chunk)
    except (TimeoutError, aiohttp.ClientError) as exc:
        # Headers are gone already: all we can do is cut the connection and record why.
        raise UpstreamError(detail=f"upstream failed mid-stream: {exc}") from exc
    await out.write_eof()
    return written
