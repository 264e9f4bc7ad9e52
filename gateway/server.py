"""Running the gateway: event loop, listening socket, worker processes, limits, graceful shutdown.

    crmgw serve --config gateway.yaml [--workers N] [--drain-timeout S]

One worker (the default) serves in this process. With N > 1 a small pre-fork supervisor
(gateway.supervisor) forks N workers; each binds the same port with SO_REUSEPORT, so the kernel
spreads new connections over them and no socket is shared between processes. Every worker is a
complete gateway: it loads and watches the rules itself, opens its own upstream pool and Redis
connection, and appends to the same audit file (lines are single ``write`` calls on an O_APPEND file,
so lines of different workers never interleave).

Shutdown (SIGTERM or SIGINT), in order, bounded by the drain timeout:
  1 stop accepting: the listening socket closes, new connections are refused by the kernel
  2 drain: requests in flight run to the end (their audit lines are written in the pipeline's
    ``finally``); idle keep-alive connections are closed
  3 cleanup: upstream pool, rules watcher, audit file; exit 0

Limits per worker: ``limits.max_connections`` open client connections (more are answered 503 and
closed at once, and counted), ``limits.request_timeout`` seconds per request end to end (504
``request-timeout``; the upstream's own ``total_timeout`` still applies inside).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import os
import secrets
import signal
import sys
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.context.geo import GeoConfigError
from gateway.identity.keys import IdentityConfigError

# The command line lives in gateway.serve_args (light, for crmgw's parser); re-exported here.
from gateway.serve_args import add_serve_arguments, run_from_args
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.metrics import Metrics
    from gateway.rulestore import RuleStore

log = logging.getLogger("crmgw")

BACKLOG = 1024


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """How this process serves; the defaults are the settings' (``limits.*``), written once there."""

    workers: int
    drain_timeout: float
    request_timeout: float | None  # None: no per-request timeout
    max_connections: int

    @classmethod
    def resolve(
        cls,
        settings: Settings,
        workers: int | None = None,
        drain_timeout: float | None = None,
        max_connections: int | None = None,
        request_timeout: float | None = None,
    ) -> ServeOptions:
        """Command line first, then the settings (``limits.*``)."""
        limits = settings.limits
        return cls(
            workers=max(1, workers or 1),
            drain_timeout=limits.drain_timeout if drain_timeout is None else drain_timeout,
            request_timeout=(limits.request_timeout if request_timeout is None else request_timeout) or None,
            max_connections=limits.max_connections if max_connections is None else max_connections,
        )


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


def serve(
    settings: Settings,
    *,
    workers: int = 1,
    drain_timeout: float | None = None,
    max_connections: int | None = None,
    request_timeout: float | None = None,
) -> int:
    require_c_parser()
    opts = ServeOptions.resolve(settings, workers, drain_timeout, max_connections, request_timeout)
    if opts.workers > 1:
        from gateway.governance.guard import unshared_warning
        from gateway.supervisor import Supervisor

        # Workers must agree on `hash` mask pseudonyms: without a configured key, one random key
        # for this supervisor's workers (inherited through the environment).
        os.environ.setdefault(settings.mask_key_env, secrets.token_hex(32))
        share_console_secret(settings)
        if unshared := unshared_warning(settings.redis_url, opts.workers):
            log.warning(unshared)  # suspensions reach one worker only without Redis (gateway/governance)
        return Supervisor(settings, opts, run_worker).run()
    return run_worker(settings, opts)


def share_console_secret(settings: Settings) -> None:
    """One console secret for every worker of this supervisor (set before forking).

    The secret signs the console's session and login cookies and derives its CSRF tokens; a worker
    with its own secret bounces every page load another worker signed to the login page. A
    configured secret (``$console.session_secret_env``) is inherited as it is; without one, one
    random secret is generated here and inherited through the environment. It is private to this
    instance: several replicas behind one entry must be given the same secret by the operator.
    """
    name = settings.console.session_secret_env
    if settings.console.enabled and not os.environ.get(name):
        os.environ[name] = secrets.token_urlsafe(48)
        log.warning(
            "$%s is not set: a random console secret shared by this instance's workers; "
            "console logins end at restart and do not reach other replicas",
            name,
        )


def run_worker(settings: Settings, opts: ServeOptions) -> int:
    """Serve in this process until SIGTERM/SIGINT, then drain; returns the exit code."""
    install_uvloop()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)  # before listening: a stop while starting is clean
        runner = await start(settings, opts)
        # Issue 14: the request path allocates many short-lived objects, and with Python's default
        # thresholds (700, 10, 10) the cycle collector cost 40-55 us of CPU a request, mostly full
        # scans of the ~100k long-lived objects (rules, catalogue, modules); 10x fewer young and
        # 20x fewer full collections bring it to ~1 us (bench/README.md, "Issue 14: the gateway's
        # own stages"). No gc.freeze(): a reload's old rules would never be collected.
        gc.set_threshold(7000, 20, 10)
        await stop.wait()
        in_flight = sum(1 for c in runner.server.connections if c._request_in_progress) if runner.server else 0
        log.info("shutting down: no new connections; draining %d in-flight request(s)", in_flight)
        await runner.cleanup()  # stop sites, wait for handlers (drain timeout), close the app
        log.info("stopped")

    asyncio.run(main())
    return 0


def gateway_app(settings: Settings, store: RuleStore, opts: ServeOptions) -> web.Application:
    from gateway.app import create_app
    from gateway.response.mask import use_key_from_env

    if not use_key_from_env(settings.mask_key_env):
        log.warning(
            "$%s is not set: `hash` mask pseudonyms change at every start (mask_key_env)", settings.mask_key_env
        )
    return create_app(settings, store, request_timeout=opts.request_timeout or 0)


async def start(settings: Settings, opts: ServeOptions | None = None) -> web.AppRunner:
    from gateway.rulestore import RuleStore

    opts = opts or ServeOptions.resolve(settings)
    store, errors = RuleStore.open(settings.path(settings.rules_dir))
    if store is None:
        for e in errors:
            print(e, file=sys.stderr)
        print("refusing to start: the rules do not load", file=sys.stderr)
        raise SystemExit(2)
    try:
        app = gateway_app(settings, store, opts)
    except (IdentityConfigError, GeoConfigError, ValueError) as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        for p in problems:
            print(f"settings: {p}", file=sys.stderr)
        print("refusing to start: fix the settings above", file=sys.stderr)
        raise SystemExit(2) from None
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=opts.drain_timeout)
    await runner.setup()
    site = LimitedSite(runner, settings.listen.host, settings.listen.port, max_connections=opts.max_connections)
    await site.start()
    log.info(
        "gateway listening on http://%s:%s -> %s (rules revision %s)",
        settings.listen.host,
        settings.listen.port,
        settings.upstream.url,
        store.current.revision,
    )
    return runner


# --- connection limit ----------------------------------------------------------------------------
_REFUSAL_BODY = b'{"error": "unavailable", "reason": "too-many-connections"}'
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


class _Refuse(asyncio.Protocol):
    """Answers a connection over the limit with a 503 and closes it (cheaper than parsing HTTP)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.WriteTransport subclasses; both have write()
        transport.write(REFUSAL)  # type: ignore[attr-defined]
        transport.close()


class LimitedSite(web.BaseSite):
    """A TCP site with SO_REUSEPORT, a deep backlog and at most ``max_connections`` open connections."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, max_connections: int, backlog: int = BACKLOG):
        super().__init__(runner, backlog=backlog)
        self._host, self._port, self._max = host, port, max_connections

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None  # BaseSite.start set it up
        limit = self._max
        app = getattr(self._runner, "app", None)

        def factory() -> asyncio.Protocol:
            if limit and len(server.connections) >= limit:
                metrics = _metrics_of(app)
                if metrics is not None:
                    metrics.connection_refused()
                return _Refuse()
            return server()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            factory, self._host, self._port, backlog=self._backlog, reuse_address=True, reuse_port=True
        )


def _metrics_of(app: web.Application | None) -> Metrics | None:
    from gateway.app import GATEWAY

    services = app.get(GATEWAY) if app is not None else None
    return services.metrics if services is not None else None


if __name__ == "__main__":  # pragma: no cover - `python -m gateway.server` == `crmgw serve`
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    _parser = argparse.ArgumentParser(prog="crmgw serve")
    add_serve_arguments(_parser)
    sys.exit(run_from_args(_parser.parse_args()))
