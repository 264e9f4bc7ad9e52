"""The aiohttp application: the wiring, the lifecycle and the admin endpoints.

create_app builds the services (gateway.services), the pipeline on top of them (gateway.pipeline)
and the one middleware stack (gateway.middleware); the upstream pool, the stores, the signals stage,
the scorer, the rules watcher and the audit file are opened and closed in ``cleanup_ctx``, so tests
and ``crmgw serve`` share the same app and the same lifecycle.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

from aiohttp import web

from gateway.access import open_access_store
from gateway.access.api import register_access_routes
from gateway.access.reconcile import DirectoryWatch
from gateway.alerts import open_alert_store
from gateway.alerts.api import register_alert_routes
from gateway.approvals import open_approval_store
from gateway.audit.heads import head_signing
from gateway.audit.index_job import audit_indexing
from gateway.background import cancel_and_wait, spawn
from gateway.browserfiles import register_browser_files
from gateway.clock import Clock
from gateway.console import register_console
from gateway.context.client_ip import peer_in
from gateway.errors import Forbidden
from gateway.governance.guard import GovernanceGuard
from gateway.metrics import register_metrics_route
from gateway.middleware import middleware_stack
from gateway.pipeline import Pipeline
from gateway.protocol import OWN_ANSWERS_LOG, own_answers_logger, protocol_guard
from gateway.rulestore import RuleStore
from gateway.scoring import build_scorer
from gateway.services import ScoringPart, Services, SignalsPart
from gateway.settings import Settings
from gateway.signals import build_signals
from gateway.upstream.forward import make_session

log = logging.getLogger("crmgw")

# The app's services (gateway.services.Services); "gateway" for the tests that read them.
GATEWAY = web.AppKey("gateway", Services)


async def _no_early_continue(request: web.Request) -> None:
    """aiohttp's default answers ``100 Continue`` before the handler runs; the pipeline does it
    itself once the request is allowed."""
    return None


def create_app(
    settings: Settings,
    store: RuleStore,
    *,
    clock: Clock | None = None,
    signals: SignalsPart | None = None,
    scorer: ScoringPart | None = None,
    request_timeout: float | None = None,
) -> web.Application:
    """The gateway as an aiohttp app, for tests and ``crmgw serve`` alike.

    ``signals`` and ``scorer`` replace the parts the lifecycle would build from the settings (tests
    give their own, e.g. on a memory backend); ``request_timeout`` overrides
    ``limits.request_timeout`` (``crmgw serve --request-timeout``; 0: none).
    """
    services = Services(settings, store, clock=clock, signals=signals, scoring=scorer)
    pipeline = Pipeline(services)
    timeout = settings.limits.request_timeout if request_timeout is None else request_timeout
    app = web.Application(
        middlewares=middleware_stack(protocol_guard(services), timeout or None),
        handler_args={
            "max_line_size": 8190,
            "max_field_size": 8190,
            # aiohttp arms this timer when a connection opens and after each request, and closes
            # the connection if no complete request head arrived by then: the slowloris guard.
            "keepalive_timeout": settings.limits.header_timeout,
            # aiohttp's access-log hook is the one place that sees the 400s its HTTP parser answers
            # before any handler or middleware runs; gateway.protocol audits those there. (The
            # gateway keeps no access log of its own: the audit log is it.)
            "access_log_class": own_answers_logger(services),
            "access_log": OWN_ANSWERS_LOG,
        },
    )
    app[GATEWAY] = services

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # Each part is closed in the reverse order of opening, also when a later one fails to open.
        async with AsyncExitStack() as opened:
            opened.callback(services.audit.close)
            opened.push_async_callback(services.redis.close)  # closed after every part using it
            session = make_session(
                connect_timeout=settings.upstream.connect_timeout,
                total_timeout=settings.upstream.total_timeout,
                limit=settings.upstream.max_connections,
                limit_per_host=settings.upstream.max_connections_per_host,
            )
            opened.push_async_callback(session.close)
            alerts = await open_alert_store(
                settings.alerts,
                redis_url=settings.redis_url,
                base_dir=settings.data_root(),
                clock=services.clock,
                redis=services.redis,
            )
            opened.push_async_callback(alerts.close)
            approvals = await open_approval_store(settings, clock=services.clock, redis=services.redis)
            opened.push_async_callback(approvals.close)
            access = await open_access_store(settings, clock=services.clock, redis=services.redis)
            opened.push_async_callback(access.close)
            services.opened(session=session, alerts=alerts, approvals=approvals, access=access)
            if settings.redis_url:  # suspensions shared by every replica (gateway/governance)
                services.governance = GovernanceGuard(services.redis.client(settings.redis_url), services.clock)
            await services.governance.start()
            opened.push_async_callback(services.governance.stop)
            directory_watch = DirectoryWatch(services)  # revokes what a directory change no longer fits
            opened.push_async_callback(directory_watch.close)
            if not services.given_signals:
                built = build_signals(
                    settings.signals,
                    redis_url=settings.redis_url,
                    alerts=alerts,
                    clock=services.clock,
                    redis=services.redis,
                )
                built.attach_metrics(services.metrics)
                services.signals = built
            await services.signals.start()
            opened.push_async_callback(services.signals.stop)
            if not services.given_scoring:
                services.scoring = build_scorer(
                    settings.scoring,
                    alerts=alerts,
                    clock=services.clock,
                    base_dir=Path(settings.base_dir),
                    redis=services.redis.client(settings.redis_url) if settings.redis_url else None,
                    audit_path=services.audit.path,
                )
            await services.scoring.start()
            opened.push_async_callback(services.scoring.stop)
            watcher = spawn("rules-watcher", store.watch(settings.reload_interval, settle=settings.reload_settle))
            opened.push_async_callback(cancel_and_wait, watcher)
            yield

    app.cleanup_ctx.append(lifecycle)
    app.cleanup_ctx.append(
        head_signing(settings, services.audit)
    )  # audit.head_key_env: the chain head signed periodically
    app.cleanup_ctx.append(audit_indexing(services))  # the console's audit search index, off the request path
    prefix = settings.admin.prefix

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    admin_networks = [ipaddress.ip_network(n, strict=False) for n in settings.admin.allow_networks]

    async def readyz(request: web.Request) -> web.Response:
        # Not ready while the audit log or the alerts journal cannot be written (whatever
        # audit.on_failure says about serving): the reasons are codes, never paths.
        health = services.health()
        unwritable = [p for p in health["degraded"] if p in ("audit-unwritable", "alerts-journal-unwritable")]
        unwritable += [p for p in health["degraded"] if p == "governance-unavailable"]  # it refuses every request
        ready = not unwritable
        body = {"status": health["status"], "ready": ready}
        if not ready:
            body["reasons"] = unwritable
        return web.json_response(body, status=200 if ready else 503)

    async def health(request: web.Request) -> web.Response:
        # Rule errors and file paths are for operators: only from the admin networks (TCP peer).
        if not peer_in(request.remote, admin_networks):
            raise Forbidden("admin-network-only")
        return web.json_response(services.health())

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get(prefix + "/health", health)
    admin_roles = frozenset(settings.alerts.api_roles)
    register_alert_routes(
        app,
        prefix=prefix,
        store_getter=lambda: services.alerts,
        authorize=lambda req: services.authenticate_admin(req, admin_roles),
    )
    register_access_routes(app, services, prefix)  # access requests: before the console and the catch-all
    register_console(app, services, settings.console)
    register_metrics_route(app, services)  # GET /metrics before the catch-all proxy route
    register_browser_files(
        app, lambda: store.current, pipeline.handle
    )  # /favicon.ico, /robots.txt: answered here, unaudited
    app.router.add_route("*", "/{tail:.*}", pipeline.handle, expect_handler=_no_early_continue)
    return app
