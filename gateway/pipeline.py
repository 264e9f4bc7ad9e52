"""The request path, in one visible order. This is the only module that knows the order.

    1 identity   who is calling                      gateway.identity  -> Identity
    2 context    where from, when, which operation   gateway.context   -> RequestContext
    3 decision   the rules                           gateway.policy    -> Decision
    4 upstream   forward (records checked first for update/delete)   gateway.upstream
    5 response   obligations: scope, masks, counts   gateway.response
    6 audit      one line per decision, whatever happened            gateway.audit

Every stage records what it did on the request's Flow; the audit line is written from the Flow in a
``finally`` so no outcome, not even a client hang-up, goes unrecorded.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from aiohttp import web

from gateway.approvals import gate as approvals_gate
from gateway.context.catalogue import Catalogue
from gateway.context.client_ip import ip_text
from gateway.context.normalise import normalise_target, parse_query
from gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    RecordNotFound,
    Unavailable,
)
from gateway.model import Flow, Identity, IPAddress, RequestContext
from gateway.response.stage import respond, upstream_method
from gateway.ruleset import RuleSet
from gateway.upstream.contract import check_request
from gateway.upstream.forward import send, upstream_url
from gateway.upstream.headers import upstream_request_headers
from gateway.upstream.records import check_target_records, count_targets

log = logging.getLogger("crmgw.pipeline")
# Request keys (aiohttp 3.14 warns on plain string keys).
REQUEST_TIMED_OUT = web.RequestKey("crmgw.request_timed_out", bool)  # set by gateway.server's timeout
REQUEST_ID = web.RequestKey("crmgw.request_id", str)  # set by Pipeline.handle, quoted by that 504

METHOD_TOKEN = re.compile(r"^[A-Z]+$")
OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_request_id() -> str:
    return secrets.token_hex(8)


def build_context(
    ruleset: RuleSet,
    *,
    request_id: str,
    method: str,
    raw_target: str,
    client_ip: IPAddress | None,
    country: str | None,
    now: datetime,
    identity: Identity | None,
    user_agent: str = "",
) -> tuple[RequestContext, str]:
    """Stage 2, shared with ``crmgw explain`` and the policy tests so all three decide alike."""
    if not METHOD_TOKEN.match(method):
        raise BadRequest("method-invalid", detail=f"method {method[:20]!r}")
    path, raw_query = normalise_target(raw_target)
    query = parse_query(raw_query)
    if "_method" in query:
        raise BadRequest("method-override-refused", detail="_method query parameter")
    catalogue: Catalogue = ruleset.catalogue
    matched = catalogue.match(method, path)
    endpoint, params = matched if matched else (None, {})
    return RequestContext(
        request_id=request_id,
        method="GET" if method == "HEAD" else method,
        path=path,
        query=query,
        client_ip=client_ip,
        country=country,
        now=now,
        identity=identity,
        endpoint=endpoint,
        path_params=params,
        user_agent=user_agent,
    ), raw_query


class Pipeline:
    """Runs one request through the stages. Holds references, no per-request state."""

    def __init__(self, gw) -> None:
        self.gw = gw  # gateway.app.Gateway: settings, store, identity, resolvers, session, audit

    async def handle(self, request: web.Request) -> web.StreamResponse:
        flow = Flow(request_id=new_request_id(), method=request.method, raw_target=request.raw_path)
        flow.received_at = self.gw.clock().timestamp()  # the gateway's clock: tests and audit agree
        request[REQUEST_ID] = flow.request_id
        response: web.StreamResponse | None = None
        try:
            response = await self._run(request, flow)
            return response
        except GatewayError as exc:
            flow.error = flow.error or exc.reason  # the real reason, even when the client sees 404
            flow.identity = flow.identity or getattr(exc, "identity", None)  # e.g. an off-boarded user
            exc = client_view(exc, self.gw.settings.out_of_scope_answer)
            if exc.status == 403 and exc.rule is None and flow.decision is not None and flow.decision.rules:
                exc.rule = flow.decision.rules[0]  # e.g. the allowing rule whose scope excluded a record
            response = error_response(flow, exc)
            return response
        except asyncio.CancelledError:
            timed_out = request.get(REQUEST_TIMED_OUT)
            flow.error = flow.error or ("request-timeout" if timed_out else "client-disconnected")
            if timed_out and not request.writer.output_size:
                flow.status = 504  # what gateway.server's timeout answers when nothing was sent yet
            raise
        except ClientDisconnected:
            # Nobody is left to answer: the line says why, with no status. The response returned is
            # only for aiohttp, which drops it quietly (re-raising would log a 500 traceback).
            flow.error = "client-disconnected"
            return web.Response(status=400)
        except Exception:
            log.exception("request %s failed", flow.request_id)
            flow.error = "internal-error"
            response = error_response(flow, GatewayError())
            return response
        finally:
            if response is not None:
                flow.status = response.status
            self.gw.finish(flow)  # audit line, metrics, signals and scoring hooks

    async def _run(self, request: web.Request, flow: Flow) -> web.StreamResponse:
        gw = self.gw
        if not gw.audit_ok():
            raise Unavailable("audit-unavailable", detail="audit log cannot be written")
        for name in OVERRIDE_HEADERS:
            if name in request.headers:
                raise BadRequest("method-override-refused", detail=name)
        ruleset = gw.store.current  # one snapshot of the rules for the whole request
        flow.ruleset = ruleset
        client_ip, peer_trusted = gw.client_ip.resolve(request.remote, request.headers)
        flow.client_ip = ip_text(client_ip) if client_ip else None

        # 1 identity
        identity = await gw.identity.identify_async(request.headers, peer_trusted, ruleset.directory)
        flow.identity = identity

        # 2 context
        ctx, raw_query = build_context(
            ruleset,
            request_id=flow.request_id,
            method=request.method,
            raw_target=request.raw_path,
            client_ip=client_ip,
            country=gw.geo.country(client_ip) if client_ip else None,
            now=gw.clock(),
            identity=identity,
            user_agent=request.headers.get("User-Agent", ""),
        )
        flow.ctx = ctx

        # 3 decision (the caller's approved access requests apply like grants: gateway.access)
        access = getattr(gw, "access", None)
        decision = ruleset.engine.decide(ctx, await access.grants_for(ctx) if access is not None else ())
        flow.decision = decision
        if decision.allowed and gw.signals is not None:
            refusal = gw.signals.check(identity, ctx)  # anomaly block / step-up / fail-closed; no I/O
            if refusal is not None:
                raise refusal
        if not decision.allowed:
            err = Forbidden(decision.reason, rule=decision.rules[0] if decision.rules else None)
            err.status = decision.status
            if decision.status == 401:
                err.error = "unauthenticated"
            raise err

        # 4 upstream: the body is read (bounded) because update/delete/create are checked first
        if request.headers.get("Expect", "").lower() == "100-continue":
            # Sent only now that the request is allowed (the route's expect_handler does nothing),
            # so a client never uploads a body the gateway will refuse.
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await read_request_body(request, gw.settings.limits.max_request_body_bytes)
        endpoint, obligations = ctx.endpoint, decision.obligations
        ours, credential = gw.upstream_identity_headers(identity, ctx, client_ip)
        headers = upstream_request_headers(
            request.headers,
            strip=gw.identity_headers,
            keep_credential=identity.forward_credential,
            add=ours,
            forward=gw.forward_headers,
        )
        content_type = request.headers.get("Content-Type")
        check_request(ruleset, ctx, obligations, request.method, body, content_type)  # nothing sent yet
        flow.targets = count_targets(ctx, body, content_type or "")
        if obligations.scope != "all":
            await check_target_records(gw, ruleset, ctx, obligations.scope, headers, body)
        if obligations.approval is not None:  # four-eyes, after every other check: refused or used up once
            await approvals_gate.check(gw, flow, ctx, obligations.approval, body)
        url = upstream_url(gw.settings.upstream.url, ctx.path, raw_query)
        flow.upstream_credential = credential  # what the CRM is told about who acts (never the secret)
        resp = await send(gw.session, upstream_method(request.method, endpoint), url, headers, body)
        flow.upstream_status = resp.status
        try:
            # 5 response
            try:
                response = await respond(
                    request,
                    resp,
                    flow,
                    endpoint=endpoint,
                    obligations=obligations,
                    identity=identity,
                    max_bytes=gw.settings.limits.max_response_body_bytes,
                    directory=ruleset.directory,
                )
            except Forbidden as exc:
                if not (exc.reason == "record-out-of-scope" and committed_write(endpoint, resp.status)):
                    raise
                await self._committed_out_of_scope(flow, ctx, obligations.scope)
                return committed_answer(flow, resp.status)
            if committed_write(endpoint, resp.status) and (flow.records_returned or 0) < (flow.records_seen or 0):
                await self._committed_out_of_scope(flow, ctx, obligations.scope)  # dropped from the answer
            return response
        finally:
            resp.release()

    async def _committed_out_of_scope(self, flow: Flow, ctx: RequestContext, scope: str) -> None:
        """The CRM committed a write whose result lies outside the caller's scope: too late to refuse,
        so the audit line says so and a high alert goes to the analysts (before the client is answered)."""
        flow.committed_out_of_scope = True
        user = ctx.identity.user.id if ctx.identity else "?"
        try:
            await self.gw.alerts.raise_alert(
                user=user,
                type="write-committed-out-of-scope",
                level="high",
                score=1.0,
                summary=f"{user}: {ctx.method} {ctx.path} was committed by the CRM but the record it "
                f"wrote is outside the caller's {scope!r} scope",
                evidence={
                    "request_id": flow.request_id,
                    "operation": ctx.operation,
                    "path": ctx.path,
                    "scope": scope,
                    "upstream_status": flow.upstream_status,
                },
                rule=None,
                window=flow.request_id,
                source="enforcement",
            )
        except Exception:  # the audit line still carries the finding; the failure is logged, not lost
            log.exception("request %s: the committed-out-of-scope alert could not be raised", flow.request_id)
            flow.signals["alert_error"] = "write-committed-out-of-scope alert not raised"


WRITE_ACTIONS = ("create", "update", "import")


def committed_write(endpoint, status: int) -> bool:
    return endpoint is not None and endpoint.action in WRITE_ACTIONS and 200 <= status < 300


def committed_answer(flow: Flow, status: int) -> web.Response:
    """The answer to a committed write whose record the caller may not see: its status, no record."""
    body = {"result": "committed", "reason": "write-committed-out-of-scope", "request_id": flow.request_id}
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"X-Request-Id": flow.request_id},
    )


def client_view(exc: GatewayError, out_of_scope_answer: str) -> GatewayError:
    """What the client is told. An out-of-scope record answers exactly like a missing one (same
    status, same body) unless the operator chose ``out_of_scope_answer: forbidden``."""
    if exc.reason == "record-out-of-scope" and out_of_scope_answer == "not_found":
        return RecordNotFound("record-not-found")
    return exc


def ruleset_of(flow: Flow, gw) -> RuleSet:
    """The rule set the request was decided with (the current one if it never got that far)."""
    return flow.ruleset or gw.store.current


async def read_request_body(request: web.Request, max_bytes: int) -> bytes:
    if not request.body_exists:
        return b""
    if request.content_length is not None and request.content_length > max_bytes:
        raise _TooLarge(detail=f"content-length {request.content_length} > {max_bytes}")
    parts, size = [], 0
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise _TooLarge()
            parts.append(chunk)
    except ConnectionResetError as exc:
        # aiohttp's word for "the client hung up" (web_protocol.connection_lost) when handlers are
        # not cancelled on disconnect, as under `crmgw serve`; with cancellation it is CancelledError.
        raise ClientDisconnected() from exc
    return b"".join(parts)


class ClientDisconnected(Exception):
    """The client went away while sending its body: not an answer, so not a GatewayError."""


class _TooLarge(BadRequest):
    status = 413
    error = "payload-too-large"


def error_response(flow: Flow, exc: GatewayError) -> web.Response:
    """The client's view of a refusal: stable codes, the deciding rule, the request id; no detail."""
    if exc.detail:
        log.info("request %s refused: %s (%s)", flow.request_id, exc.reason, exc.detail)
    payload = {"error": exc.error, "reason": exc.reason, "request_id": flow.request_id}
    if exc.rule:
        payload["rule"] = exc.rule
    payload.update(getattr(exc, "payload", None) or {})  # e.g. approval_id (gateway.approvals.gate)
    headers = {"X-Request-Id": flow.request_id}
    if exc.status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{exc.reason}"'
    return web.Response(status=exc.status, body=orjson.dumps(payload), content_type="application/json", headers=headers)
