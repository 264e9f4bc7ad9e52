"""The gateway's long-lived parts, shared by every request: one typed holder, below the pipeline.

``Services`` holds what the stages use (settings, rule store, clock, identity, client address, geo,
upstream session, audit log, stores) and the two kinds of pluggable part:

    Guard      asked after the rules allowed a request and before it is forwarded; may refuse it
               (behaviour blocks, step-up). No I/O on the request path.
    Observer   told about every finished request (its audit record); counts, scores, measures.
               Never raises into the request; an observer's failure is logged and counted.

gateway.app.create_app builds it, with collaborators passed in (tests give their own signals stage
or scorer) and the rest built in the app's lifecycle; no part is ever ``None``: until the lifecycle
has built the real one, a null object stands in. The pipeline (gateway.pipeline) is built on top of
it and is not reachable from it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import aiohttp
from aiohttp import web

from gateway.audit.events import audit_record, stream_start_record
from gateway.audit.log import AuditLog
from gateway.clock import Clock, utc_now
from gateway.context.client_ip import ClientIPResolver, ip_text
from gateway.context.geo import GeoResolver
from gateway.errors import Forbidden, GatewayError, Unavailable
from gateway.governance.guard import GovernanceGuard
from gateway.identity.stage import IdentityStage
from gateway.model import Flow, Identity, IPAddress, RequestContext
from gateway.ruleset import RuleSet
from gateway.rulestore import RuleStore
from gateway.settings import Settings
from gateway.upstream.attribution import Attribution
from gateway.writable import cannot_append

if TYPE_CHECKING:
    from gateway.access.store import AccessStore
    from gateway.alerts.store import AlertStore
    from gateway.approvals.store import ApprovalStore
    from gateway.metrics import Metrics
    from gateway.redisconn import RedisConnections
    from gateway.signals.allowance import RowBudget

log = logging.getLogger("crmgw")

T = TypeVar("T")
AuditRecord = dict[str, Any]


class Guard(Protocol):
    def check(self, identity: Identity, ctx: RequestContext) -> GatewayError | None: ...


class Observer(Protocol):
    def submit(self, flow: Flow, record: AuditRecord, ruleset: RuleSet) -> None: ...


class Component(Protocol):
    """A part with a background life: started and stopped by the app's lifecycle, seen in health."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def drain(self) -> None: ...
    def health(self) -> dict[str, Any]: ...


class SignalsPart(Guard, Observer, Component, Protocol):
    """gateway.signals.stage.SignalsStage: counters, thresholds, blocks and step-ups."""

    async def row_budget(self, flow: Flow) -> RowBudget | None:
        """Rows a streamed answer may carry before a block rule fires (None: no limit)."""
        ...


class ScoringPart(Observer, Component, Protocol):
    """gateway.scoring.Scorer: the trained detector."""


class Idle:
    """The null part: refuses nothing, observes nothing, has nothing to start (until replaced)."""

    def check(self, identity: Identity, ctx: RequestContext) -> GatewayError | None:
        return None

    def submit(self, flow: Flow, record: AuditRecord, ruleset: RuleSet) -> None:
        return None

    async def row_budget(self, flow: Flow) -> RowBudget | None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def drain(self) -> None:
        return None

    def health(self) -> dict[str, Any]:
        return {"enabled": False}


class NotStarted(AttributeError):
    """A store that the app's lifecycle opens was read before the app started (an AttributeError:
    the part does not exist yet, so ``getattr(services, "alerts", None)`` is None until then)."""


class Services:
    """The long-lived parts of a running gateway, shared by every request."""

    def __init__(
        self,
        settings: Settings,
        store: RuleStore,
        *,
        clock: Clock | None = None,
        signals: SignalsPart | None = None,
        scoring: ScoringPart | None = None,
        metrics: Metrics | None = None,
    ):
        from gateway.metrics import Metrics
        from gateway.redisconn import RedisConnections

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
        self.metrics: Metrics = metrics or Metrics()
        # the metrics' tallies go into the families with each tick's audit lines, before those
        # answers are released (gateway.metrics: /metrics counts every answered request)
        self.audit.before_release = self.flush_metrics
        # One Redis client and health tracker per URL for the stores and the signals stage the
        # lifecycle opens; it closes them last, after every part using them stopped.
        self.redis: RedisConnections = RedisConnections(clock=self.clock)
        # Given by the caller (tests), else built by the app's lifecycle once the alert store is open.
        self.given_signals, self.given_scoring = signals is not None, scoring is not None
        self.signals: SignalsPart = signals or Idle()
        self.scoring: ScoringPart = scoring or Idle()
        # Suspensions (gateway/governance): this process only until the lifecycle shares them via Redis.
        self.governance = GovernanceGuard(None, self.clock)
        self._session: aiohttp.ClientSession | None = None
        self._alerts: AlertStore | None = None
        self._approvals: ApprovalStore | None = None
        self._access: AccessStore | None = None
        self.started_at = time.time()
        headers = settings.upstream.identity_headers
        self._crm_headers = [h for h in (headers.user, headers.roles, headers.email) if h]
        credential = settings.upstream.credential
        self._credential = (credential.header, credential.resolve()) if credential else None
        # On-behalf-of headers and per-user CRM credentials (the secrets are read now; a bad
        # source stops start-up): gateway.upstream.attribution.
        self.attribution = Attribution(
            settings.upstream, service=self._credential, path=settings.path, reload_interval=settings.reload_interval
        )

    # --- opened by the app's lifecycle ----------------------------------------------------------
    def opened(
        self,
        *,
        session: aiohttp.ClientSession,
        alerts: AlertStore,
        approvals: ApprovalStore,
        access: AccessStore,
    ) -> None:
        self._session, self._alerts, self._approvals, self._access = session, alerts, approvals, access

    @property
    def session(self) -> aiohttp.ClientSession:
        return _started(self._session, "upstream session")

    @property
    def alerts(self) -> AlertStore:
        return _started(self._alerts, "alert store")

    @property
    def approvals(self) -> ApprovalStore:
        return _started(self._approvals, "approval store")

    @property
    def access(self) -> AccessStore:
        return _started(self._access, "access-request store")

    @property
    def observers(self) -> tuple[tuple[str, Observer], ...]:
        return (("metrics", self.metrics), ("signals", self.signals), ("scoring", self.scoring))

    # --- used by the pipeline -------------------------------------------------------------------
    def audit_ok(self) -> bool:
        return self.audit.healthy or self.settings.audit.on_failure == "allow"

    def ruleset_of(self, flow: Flow) -> RuleSet:
        """The rule set the request was decided with (the current one if it never got that far)."""
        return flow.ruleset or self.store.current

    def finish(self, flow: Flow) -> AuditRecord:
        """The end of every request, whoever answered it (the pipeline, gateway.protocol's refusals
        or aiohttp's parser): one audit line, the metrics, the observers. Never raises."""
        record = audit_record(flow)
        self.audit.write(record)
        self._observe(flow, record)
        self.flush_metrics()  # counted before this answer is sent
        return record

    def finish_soon(self, flow: Flow) -> asyncio.Future[bool] | None:
        """:meth:`finish` with the audit line appended in this loop tick's batch (one flock and one
        ``write()`` for every request finishing in the same tick: gateway.audit.log.write_soon).
        The caller awaits the future before its answer is sent, so the line is still written
        before the client sees the response; None when written at once (no running loop)."""
        record = audit_record(flow)
        written = self.audit.write_soon(record)
        self._observe(flow, record)
        if written is None:
            self.flush_metrics()  # written at once: counted at once too
        return written

    async def stream_started(self, flow: Flow) -> None:
        """A streamed export's start line, in the file before its first row is sent: a gateway
        killed mid-export still leaves a line (gateway.audit.events.stream_start_record). Not a
        request: no observer hears of it. A line the disk refuses refuses the export (nothing has
        been sent yet), as a refused final line would refuse the next request."""
        written = self.audit.write_soon(stream_start_record(flow))
        ok = await written if written is not None else self.audit.healthy
        if not ok and not self.audit_ok():
            raise Unavailable("audit-unavailable", detail="audit log cannot be written")

    def flush_metrics(self) -> None:
        """The metrics' tallies into their families (gateway.metrics); a failure is the metrics
        observer's, logged and counted like one, never the request's."""
        try:
            self.metrics.flush()
        except Exception:
            log.exception("metrics flush failed")
            self.metrics.observer_failed("metrics")

    def _observe(self, flow: Flow, record: AuditRecord) -> None:
        ruleset = self.ruleset_of(flow)
        for name, observer in self.observers:
            try:
                observer.submit(flow, record, ruleset)
            except Exception:  # an observer must not turn a served request into an error
                log.exception("request %s: observer %s failed", flow.request_id, name)
                self.metrics.observer_failed(name)

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
        self.governance.enforce(identity)  # suspended: 403 user-suspended here too (gateway/governance)
        if not identity.roles & roles:
            raise Forbidden("role-unauthorized", detail=f"admin needs one of {sorted(roles)}")
        return identity

    # --- health -----------------------------------------------------------------------------------
    def unwritable(self) -> list[str]:
        """``audit-unwritable`` / ``alerts-journal-unwritable`` when the last write failed or the file
        cannot be opened for appending now (gateway.writable): the gateway is then not ready."""
        problems = []
        if not self.audit.healthy or cannot_append(self.audit.path):
            problems.append("audit-unwritable")
        journal = self._alerts.journal if self._alerts is not None else None
        if journal is not None and (not journal.healthy or cannot_append(journal.path)):
            problems.append("alerts-journal-unwritable")
        return problems

    def health(self) -> dict[str, Any]:
        rules = self.store.health()
        degraded: list[str] = []
        if rules["last_reload_error"]:
            degraded.append("rules-reload-failed")
        unwritable = self.unwritable()
        degraded += [p for p in unwritable if p == "audit-unwritable"]
        extra: dict[str, Any] = {}
        if self._alerts is not None:
            extra["alerts"] = self._alerts.health()
            degraded += extra["alerts"].get("degraded") or []
            if "alerts-journal-unwritable" in unwritable and "alerts-journal-unwritable" not in degraded:
                degraded.append("alerts-journal-unwritable")
        extra["scoring"] = self.scoring.health()
        if self.settings.scoring.model_dir and extra["scoring"].get("model") in ("refused", "missing", "stale"):
            degraded.append(f"detector-model-{extra['scoring']['model']}")
        degraded += extra["scoring"].get("problems") or []  # demo key, over budget here, reload failed
        # The suspension overlay on the rule files; a Redis outage is already named by the stores.
        extra["governance"] = self.governance.health()
        degraded += extra["governance"]["degraded"]  # governance-unavailable: never loaded, refusing
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


def _started(part: T | None, name: str) -> T:
    if part is None:
        raise NotStarted(f"the {name} is opened when the app starts")
    return part
