"""A CRM stand-in that records exactly what reached it, and can be told to misbehave.

The demo CRM is an aiohttp application: by the time a handler runs, aiohttp has parsed, decoded and
normalised the request, so it cannot say what bytes the gateway actually sent. This stand-in is a
raw asyncio HTTP/1.1 server: it keeps the request line, the header lines and the body verbatim,
answers with a body that fits every catalogue endpoint (so allowed requests succeed), and lets a
test replace the answer with anything -- a hang, a reset, a lying Content-Length, odd encodings.

    standin = CrmStandIn(); await standin.start()
    standin.reply = lambda seen: Reply(200, [("Content-Type", "text/html")], b"<html>")
    standin.seen[-1].target  # the raw request target the gateway sent
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
from collections.abc import Awaitable, Callable

import orjson

RECORD = {
    "id": 1,
    "name": "Customer 1",
    "email": "c1@client.example",
    "phone": "+33 1 23 45 67 89",
    "owner_id": "alice",
    "team": "east",
    "department": "sales",
    "region": "emea",
    "branch": "paris",
    "quote_price": 1200,
    "complaints": "late delivery",
}
# One body for every JSON endpoint of the shipped catalogue: "$" is the body itself (a record
# owned by alice), and every list path ("data[]", "results.items[]", ...) is an empty list.
UNIVERSAL = {
    **RECORD,
    "data": [],
    "customers": [],
    "results": {"items": [], "count": 0},
    "open": [],
    "closed": [],
    "users": [],
    "contact": {
        "id": 1,
        "owner": {"id": "alice", "email": "alice@example.com"},
        "team": "east",
        "department": "sales",
        "region": "emea",
        "branch": "paris",
    },
    "assigned_to": [{"id": "alice", "email": "alice@example.com"}],
}
CSV_BODY = (
    b"id,name,email,phone,owner_id,team,department,region,branch,quote_price,complaints\r\n"
    b"1,Customer 1,c1@client.example,+33 1 23 45 67 89,alice,east,sales,emea,paris,1200,late delivery\r\n"
)


@dataclasses.dataclass
class Seen:
    """One request as it arrived: nothing decoded, nothing normalised."""

    request_line: bytes
    header_lines: list[bytes]
    body: bytes

    @property
    def method(self) -> str:
        return self.request_line.split(b" ")[0].decode("latin-1")

    @property
    def target(self) -> str:
        return self.request_line.split(b" ")[1].decode("latin-1")

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    def headers(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive, exact spelling otherwise)."""
        out = []
        for line in self.header_lines:
            key, _, value = line.partition(b":")
            if key.decode("latin-1").lower() == name.lower():
                out.append(value.strip().decode("latin-1"))
        return out

    def header_names(self) -> list[str]:
        return [line.partition(b":")[0].decode("latin-1") for line in self.header_lines]


@dataclasses.dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    body: bytes = b""
    # misbehaviour: None | "hang" (never answer) | "reset" (RST before answering)
    # | "short" (promise the body's Content-Length, send half, close)
    action: str | None = None
    raw: bytes | None = None  # send exactly these bytes instead of building a response


def json_reply(obj, status: int = 200, **headers: str) -> Reply:
    hdrs = [("Content-Type", "application/json")] + [(k.replace("_", "-"), v) for k, v in headers.items()]
    return Reply(status, hdrs, orjson.dumps(obj))


def default_reply(seen: Seen) -> Reply:
    if seen.method == "HEAD":
        return Reply(200, [("Content-Type", "application/json")], b"")
    if seen.path.endswith(".csv"):
        return Reply(200, [("Content-Type", "text/csv; charset=utf-8")], CSV_BODY)
    if seen.method == "DELETE":
        return Reply(204)
    return json_reply(UNIVERSAL)


ReplyFn = Callable[[Seen], "Reply | Awaitable[Reply]"]


class CrmStandIn:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.reply: ReplyFn = default_reply
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> CrmStandIn:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        self.connections += 1
        try:
            while True:
                seen = await self._read_request(reader)
                if seen is None:
                    return
                self.seen.append(seen)
                reply = self.reply(seen)
                if asyncio.iscoroutine(reply):
                    reply = await reply
                if not await self._answer(writer, reply, seen):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> Seen | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head[:-4].split(b"\r\n")
        seen = Seen(lines[0], lines[1:], b"")
        length = seen.headers("content-length")
        if length:
            seen.body = await reader.readexactly(int(length[0]))
        elif any("chunked" in v.lower() for v in seen.headers("transfer-encoding")):
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await reader.readexactly(size + 2))
                if size == 0:
                    break
            seen.body = b"".join(p[:-2] for p in parts)
        return seen

    async def _answer(self, writer: asyncio.StreamWriter, reply: Reply, seen: Seen) -> bool:
        if reply.action == "hang":
            await asyncio.Event().wait()  # until the test (or the gateway's timeout) ends it
        if reply.action == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if reply.raw is not None:
            writer.write(reply.raw)
            await writer.drain()
            return False
        names = {k.lower() for k, _ in reply.headers}
        headers = list(reply.headers)
        if "content-length" not in names and reply.status not in (204, 304):
            headers.append(("Content-Length", str(len(reply.body))))
        head = f"HTTP/1.1 {reply.status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        body = reply.body if seen.method != "HEAD" else b""
        if reply.action == "short":
            writer.write(head.encode("latin-1") + body[: len(body) // 2])
            await writer.drain()
            return False
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
        return True
