"""Exact bytes over a socket, and the parts of the answer a test needs (status, headers, body)."""

from __future__ import annotations

import asyncio
import dataclasses


@dataclasses.dataclass
class Answer:
    status: int
    head: bytes
    body: bytes
    interim: list[int]  # 1xx statuses received before the final one

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("latin-1")
        return None


async def exchange(port: int, data: bytes, timeout: float = 10.0, *, first_only: bool = True) -> Answer:
    """Write ``data``, read until the server closes (requests carry ``Connection: close``).

    A server still waiting for bytes after ``timeout`` seconds is not an error here: what was read
    so far is the answer (framing tests assert on what reached the CRM, not on the wait).
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    parts: list[bytes] = []
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                parts.append(chunk)
                if first_only and _complete(b"".join(parts)):
                    break
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        writer.close()
    raw = b"".join(parts)
    interim = []
    while raw.startswith(b"HTTP/1.1 1"):
        head, _, raw = raw.partition(b"\r\n\r\n")
        interim.append(int(head.split(b" ", 2)[1]))
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return Answer(status, head, body, interim)


def _complete(raw: bytes) -> bool:
    """A final response with a Content-Length has fully arrived (the server may linger after it)."""
    while raw.startswith(b"HTTP/1.1 1"):
        raw = raw.partition(b"\r\n\r\n")[2]
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def request(
    target: str | bytes,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    *,
    method: str = "GET",
    body: bytes = b"",
    host: str = "gateway",
) -> bytes:
    """An HTTP/1.1 request with ``Connection: close``; ``target`` is sent verbatim."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    raw_target = target if isinstance(target, bytes) else target.encode("latin-1")
    lines = [method.encode() + b" " + raw_target + b" HTTP/1.1", b"Host: " + host.encode(), b"Connection: close"]
    lines += [f"{k}: {v}".encode("latin-1") for k, v in items]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in items):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
