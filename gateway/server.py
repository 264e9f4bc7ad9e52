"""Running the gateway process: event loop, listening socket, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from gateway.context.geo import GeoConfigError
from gateway.identity.keys import IdentityConfigError
from gateway.settings import Settings

log = logging.getLogger("crmgw")


def require_c_parser() -> None:
    """Refuse to run on aiohttp's pure-Python HTTP parser: the C (llhttp) one is the hardened one."""
    from aiohttp import http_parser

    if http_parser.HttpRequestParser is http_parser.HttpRequestParserPy:
        raise SystemExit("aiohttp's C HTTP parser is not available (AIOHTTP_NO_EXTENSIONS?); refusing to start")


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return
    if sys.version_info >= (3, 12):
        return  # callers use uvloop.run via asyncio.Runner below
    uvloop.install()


async def start(settings: Settings) -> web.AppRunner:
    from gateway.app import create_app
    from gateway.rulestore import RuleStore

    store, errors = RuleStore.open(settings.path(settings.rules_dir))
    if store is None:
        for e in errors:
            print(e, file=sys.stderr)
        raise SystemExit("refusing to start: the rules do not load")
    try:
        app = create_app(settings, store)
    except (IdentityConfigError, GeoConfigError, ValueError) as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        for p in problems:
            print(f"settings: {p}", file=sys.stderr)
        raise SystemExit("refusing to start: fix the settings above") from None
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=30.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.listen.host, settings.listen.port, reuse_port=True)
    await site.start()
    log.info(
        "gateway listening on http://%s:%s -> %s (rules revision %s)",
        settings.listen.host, settings.listen.port, settings.upstream.url, store.current.revision,
    )
    return runner


def serve(settings: Settings) -> int:
    require_c_parser()
    install_uvloop()

    async def main() -> None:
        runner = await start(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down: draining in-flight requests")
        await runner.cleanup()

    asyncio.run(main())
    return 0
