"""Configuration (d): the barest useful aiohttp reverse proxy, the floor Python itself sets.

Same stack as the gateway (aiohttp server + one pooled ClientSession, uvloop, N worker processes on
one SO_REUSEPORT port) and nothing else: no identity, no rules, no filtering, no audit. The gap
between (d) and the gateway (c) is what the gateway's own work costs; the gap between (d) and nginx
(b) is what Python and aiohttp cost.

    python -m bench.passthrough --port 9000 --upstream http://127.0.0.1:9001 --workers 2
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset(
    h.lower() for h in ("Connection", "Keep-Alive", "Transfer-Encoding", "TE", "Upgrade", "Host", "Content-Length")
)
SESSION = web.AppKey("session", aiohttp.ClientSession)


def make_app(upstream: str) -> web.Application:
    app = web.Application()

    async def lifecycle(app: web.Application):
        app[SESSION] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )
        yield
        await app[SESSION].close()

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read() if request.body_exists else None
        async with app[SESSION].request(
            request.method, upstream + request.raw_path, headers=headers, data=body, allow_redirects=False
        ) as resp:
            payload = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=resp.status, body=payload, headers=out)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def run_one(host: str, port: int, upstream: str) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    web.run_app(make_app(upstream), host=host, port=port, reuse_port=True, access_log=None, print=None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.passthrough")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    upstream = args.upstream.rstrip("/")
    if args.workers <= 1:
        run_one(args.host, args.port, upstream)
        return 0
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            try:
                run_one(args.host, args.port, upstream)
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum, frame):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for pid in children:
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
