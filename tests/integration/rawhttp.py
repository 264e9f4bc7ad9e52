"""Send exact bytes to a server: HTTP client libraries normalise what these tests need verbatim."""

from __future__ import annotations

import asyncio


async def raw_request(port: int, data: bytes, host: str = "127.0.0.1", timeout: float = 5.0) -> tuple[int, bytes]:
    """Write ``data``, read the whole answer (the request should carry ``Connection: close``)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def get(target: str, headers: dict[str, str] | None = None, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: gateway", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
