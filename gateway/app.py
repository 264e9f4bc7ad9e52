"""The aiohttp application: wiring, lifecycle and the admin endpoints.

Everything long-lived lives on one ``Gateway`` object stored under an AppKey; the pooled
ClientSession, the rules watcher and the audit file are opened and closed in ``cleanup_ctx`` so
tests and ``crmgw serve`` share the same lifecycle.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.access import open_access_store
from gateway.access.api import register_access_routes
from gateway.access.reconcile import DirectoryWatch
from gateway.alerts import open_alert_store
from gateway.alerts.api import register_alert_routes
from gateway.approvals import open_approval_store
from gateway.audit.events import audit_record
from gateway.audit.log import AuditLog
from gateway.browserfiles import register_browser_files
from gateway.console import register_console
from gateway.context.client_ip import ClientIPResolver, ip_text, peer_in
from gateway.context.geo import GeoResolver
from gateway.errors import Forbidden
from gateway.identity.stage import IdentityStage
from gateway.model import Identity, IPAddress, RequestContext
from gateway.pipeline import Clock, Pipeline, ruleset_of, utc_now
from gateway.protocol import OWN_ANSWERS_LOG, own_answers_logger, protocol_guard
from gateway.rulestore import RuleStore
from gateway.scoring import build_scorer
from gateway.settings import Settings
from gateway.signals import build_signals
from gateway.upstream.attribution import Attribution
from gateway.upstream.forward import make_session
from gateway.writable import cannot_append

log = logging.getLogger("crmgw")


class Gateway:
    """The long-lived parts of a running gateway, shared by every request."""

    def __init__(self, settings: Settings, store: RuleStore, *, clock: Clock | None = None):
        self.settings = settings
        self.store = store
        self.clock: Clock = clock or utc_now
        self.identity = IdentityStage(settings.identity, Path(settings.base_dir))
        self.identity_headers = frozenset(self.identity.identity_headers)
        self.client_ip = ClientIPResolver(settings.trusted_proxies, settings.client_address_header)
        # gateway.upstream.headers: client headers passed on besides the standard ones
        self.forward_headers = frozenset(settings.upstream.forward_headers)
        self.geo = GeoResolver(
            str(settings.path(settings.geo.mmdb)) if settings.geo.mmdb else None,
            overrides=settings.geo.overrides,
        )
        self.audit = AuditLog(settings.data_path(settings.audit.path), settings.audit.max_bytes, settings.audit.backups)
        self.session: aiohttp.ClientSession | None = None
        # Optional stages wired by create_app's callers (issue 3): behaviour signals and scoring.
        # Protocol (gateway.pipeline.SignalsHook): check(identity, ctx) -> GatewayError | None
        # (no I/O), submit(flow, record, ruleset) (no I/O, never raises), drain(), health().
        self.signals = None
        self.scoring = None
        self.alerts = None  # gateway.alerts.AlertStore, opened in create_app's lifecycle
        self.approvals = None  # gateway.approvals.ApprovalStore (four-eyes), opened in the lifecycle
        self.access = None  # gateway.access.store.AccessStore (access requests), opened in the lifecycle
        self.metrics = None  # gateway.metrics.Metrics, set by register_metrics_route
        self.started_at = time.time()
        self.pipeline = Pipeline(self)
        headers = settings.upstream.identity_headers
        self._crm_headers = [h for h in (headers.user, headers.roles, headers.email) if h]
        self._credential = (
            (settings.upstream.credential.header, settings.upstream.credential.resolve())
            if settings.upstream.credential
            else None
        )
        # On-behalf-of headers and per-user CRM credentials (the secrets are read now; a bad
        # source stops start-up): gateway.upstream.attribution.
        self.attribution = Attribution(
            settings.upstream, service=self._credential, path=settings.path, reload_interval=settings.reload_interval
        )

    # --- used by the pipeline -------------------------------------------------------------
    def audit_ok(self) -> bool:
        return self.audit.healthy or self.settings.audit.on_failure == "allow"

    def write_audit(self, flow) -> dict:
        record = audit_record(flow)
        self.audit.write(record)
        return record

    def finish(self, flow) -> dict:
        """The end of every request, whoever answered it (the pipeline, gateway.protocol's refusals
        or aiohttp's parser): one audit line, the metrics, the off-path hooks. Never raises."""
        record = self.write_audit(flow)
        if self.metrics is not None:
            self.metrics.observe(flow, record)  # counters only, no I/O
        for hook in (self.signals, self.scoring):
            if hook is not None:
                hook.submit(flow, record, ruleset_of(flow, self))
        return record

    def upstream_identity_headers(
        self, identity: Identity, ctx: RequestContext, client_ip: IPAddress | None
    ) -> tuple[dict[str, str], str]:
        """The headers the gateway sets towards the CRM, and which credential kind they carry."""
        h = self.settings.upstream.identity_headers
        out = {h.user: identity.user.id, "X-Request-Id": ctx.request_id}
        if h.roles:
            out[h.roles] = ",".join(sorted(identity.roles))
        if h.email and identity.user.email:
            out[h.email] = identity.user.email
        if client_ip is not None:
            out["X-Forwarded-For"] = ip_text(client_ip)
        # The service credential, a personal one, or none (the caller's own CRM login); raises
        # Forbidden when the CRM could not be told who acts.
        attribution, credential = self.attribution.headers(identity, ctx, self.store.current.directory)
        out.update(attribution)
        return out, credential

    def authenticate_admin(self, request: web.Request, roles: frozenset[str]) -> Identity:
        """Identify the caller of an admin page/API with the same authenticators as the proxy.

        Raises Unauthenticated (401) or Forbidden (403 ``role-unauthorized``/``user-inactive``)
        unless the caller holds one of ``roles``.
        """
        _, peer_trusted = self.client_ip.resolve(request.remote, request.headers)
        identity = self.identity.identify(request.headers, peer_trusted, self.store.current.directory)
        if not identity.roles & roles:
            raise Forbidden("role-unauthorized", detail=f"admin needs one of {sorted(roles)}")
        return identity

    # --- admin endpoints ------------------------------------------------------------------
    def unwritable(self) -> list[str]:
        """``audit-unwritable`` / ``alerts-journal-unwritable`` when the last write failed or the file
        cannot be opened for appending now (gateway.writable): the gateway is then not ready."""
        problems = []
        if not self.audit.healthy or cannot_append(self.audit.path):
            problems.append("audit-unwritable")
        journal = self.alerts.journal if self.alerts is not None else None
        if journal is not None and (not journal.healthy or cannot_append(journal.path)):
            problems.append("alerts-journal-unwritable")
        return problems

    def health(self) -> dict:
        rules = self.store.health()
        degraded = []
        if rules["last_reload_error"]:
            degraded.append("rules-reload-failed")
        unwritable = self.unwritable()
        degraded += [p for p in unwritable if p == "audit-unwritable"]
        extra = {}
        if self.alerts is not None:
            extra["alerts"] = self.alerts.health()
            degraded += extra["alerts"].get("degraded") or []
            if "alerts-journal-unwritable" in unwritable and "alerts-journal-unwritable" not in degraded:
                degraded.append("alerts-journal-unwritable")
        if self.scoring is not None:
            extra["scoring"] = self.scoring.health()
            if self.settings.scoring.model_dir and extra["scoring"].get("model") in ("refused", "missing", "stale"):
                degraded.append(f"detector-model-{extra['scoring']['model']}")
        if self.signals is not None:
            extra["signals"] = self.signals.health()
            degraded += extra["signals"].get("problems") or []  # redis unavailable / refusing writes, data lost
        identity = self.identity.health()  # fetched signing keys (jwks_url / oidc_discovery), if any
        if identity["key_sets"]:
            extra["identity"] = identity
            degraded += identity["degraded"]
        return {
            "status": "degraded" if degraded else "ok",
            "degraded": degraded,
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "rules": rules,
            "audit": {
                "path": str(self.audit.path),
                "written": self.audit.written,
                "dropped": self.audit.dropped,
                "healthy": self.audit.healthy,
            },
            **extra,
        }


GATEWAY = web.AppKey("gateway", Gateway)


async def _no_early_continue(request: web.Request) -> None:
    """aiohttp's default answers ``100 Continue`` before the handler runs; the pipeline does it
    itself once the request is allowed."""
    return None


def create_app(settings: Settings, store: RuleStore, *, clock: Clock | None = None) -> web.Application:
    gw = Gateway(settings, store, clock=clock)
    app = web.Application(
        # First, so it sees every request the router hands over (gateway.protocol).
        middlewares=[protocol_guard(gw)],
        handler_args={
            "max_line_size": 8190,
            "max_field_size": 8190,
            # aiohttp arms this timer when a connection opens and after each request, and closes
            # the connection if no complete request head arrived by then: the slowloris guard.
            "keepalive_timeout": settings.limits.header_timeout,
            # aiohttp's access-log hook is the one place that sees the 400s its HTTP parser answers
            # before any handler or middleware runs; gateway.protocol audits those there. (The
            # gateway keeps no access log of its own: the audit log is it.)
            "access_log_class": own_answers_logger(gw),
            "access_log": OWN_ANSWERS_LOG,
        },
    )
    app[GATEWAY] = gw

    async def lifecycle(app: web.Application):
        gw.session = make_session(
            connect_timeout=settings.upstream.connect_timeout,
            total_timeout=settings.upstream.total_timeout,
            limit=settings.upstream.max_connections,
            limit_per_host=settings.upstream.max_connections_per_host,
        )
        gw.alerts = await open_alert_store(
            settings.alerts, redis_url=settings.redis_url, base_dir=settings.data_root(), clock=gw.clock
        )
        gw.approvals = await open_approval_store(settings, clock=gw.clock)
        gw.access = await open_access_store(settings, clock=gw.clock)
        directory_watch = DirectoryWatch(gw)  # revokes what a directory change no longer fits
        if gw.signals is None:  # tests may install their own stage
            gw.signals = build_signals(settings.signals, redis_url=settings.redis_url, alerts=gw.alerts, clock=gw.clock)
            if gw.metrics is not None:
                gw.signals.attach_metrics(gw.metrics)
        await gw.signals.start()
        if gw.scoring is None:
            gw.scoring = build_scorer(
                settings.scoring, alerts=gw.alerts, clock=gw.clock, base_dir=Path(settings.base_dir)
            )
        await gw.scoring.start()
        watcher = asyncio.create_task(
            store.watch(settings.reload_interval, settle=settings.reload_settle), name="rules-watcher"
        )
        try:
            yield
        finally:
            watcher.cancel()
            try:
                await watcher
            except asyncio.CancelledError:
                pass
            await gw.scoring.stop()
            await gw.signals.stop()
            await gw.session.close()
            await gw.alerts.close()
            await directory_watch.close()
            await gw.approvals.close()
            await gw.access.close()
            gw.audit.close()

    app.cleanup_ctx.append(lifecycle)
    from gateway.audit.heads import head_signing

    app.cleanup_ctx.append(head_signing(gw))  # audit.head_key_env: the chain head signed periodically
    prefix = settings.admin.prefix

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    admin_networks = [ipaddress.ip_network(n, strict=False) for n in settings.admin.allow_networks]

    async def readyz(request: web.Request) -> web.Response:
        # Not ready while the audit log or the alerts journal cannot be written (whatever
        # audit.on_failure says about serving): the reasons are codes, never paths.
        health = gw.health()
        unwritable = [p for p in health["degraded"] if p in ("audit-unwritable", "alerts-journal-unwritable")]
        ready = not unwritable
        body = {"status": health["status"], "ready": ready}
        if not ready:
            body["reasons"] = unwritable
        return web.json_response(body, status=200 if ready else 503)

    async def health(request: web.Request) -> web.Response:
        # Rule errors and file paths are for operators: only from the admin networks (TCP peer).
        if not peer_in(request.remote, admin_networks):
            return web.json_response({"error": "forbidden", "reason": "admin-network-only"}, status=403)
        return web.json_response(gw.health())

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get(prefix + "/health", health)
    admin_roles = frozenset(settings.alerts.api_roles)
    register_alert_routes(
        app,
        prefix=prefix,
        store_getter=lambda: gw.alerts,
        authorize=lambda req: gw.authenticate_admin(req, admin_roles),
    )
    register_access_routes(app, gw, prefix)  # access requests: before the console and the catch-all
    register_console(app, gw, settings.console)
    from gateway.metrics import register_metrics_route

    register_metrics_route(app, gw)  # GET /metrics before the catch-all proxy route
    register_browser_files(app, gw)  # /favicon.ico, /robots.txt: answered here, unaudited
    app.router.add_route("*", "/{tail:.*}", gw.pipeline.handle, expect_handler=_no_early_continue)
    return app
