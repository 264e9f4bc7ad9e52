"""The request path, in one visible order. This is the only module that knows the order.

    1 identity   who is calling                      gateway.identity  -> Identity
    2 context    where from, when, which operation   gateway.context   -> RequestContext
    3 decision   the rules                           gateway.policy    -> Decision
    4 upstream   the request checked against the obligations before anything is sent (body,
                 query, write targets: gateway.response.request_contract / writes /
                 write_targets; the body parsed once), then forwarded            gateway.upstream
    5 response   obligations on the answer: scope, masks, counts              gateway.response
    6 audit      one line per decision, whatever happened, then the observers (metrics, signals,
                 scoring)                                       gateway.services.Services.finish

The long-lived parts come from gateway.services (typed; built by gateway.app.create_app); the
signals stage is the guard asked between the decision and the upstream.

Every stage records what it did on the request's Flow; the audit line is written from the Flow in a
``finally`` so no outcome, not even a client hang-up, goes unrecorded.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiohttp import web

from gateway.answers import REQUEST_DEADLINE, REQUEST_TIMED_OUT, error_response, request_id_of
from gateway.approvals import gate as approvals_gate
from gateway.context.build import build_context
from gateway.context.client_ip import ip_text
from gateway.errors import BadRequest, Denied, Forbidden, GatewayError, RecordNotFound, Unavailable
from gateway.model import Endpoint, Flow, RequestContext
from gateway.response.request_contract import check_request
from gateway.response.stage import respond, upstream_method
from gateway.response.write_targets import check_target_records, count_targets
from gateway.services import Services
from gateway.settings import Settings
from gateway.upstream.bodies import RequestBody
from gateway.upstream.forward import send, upstream_url
from gateway.upstream.headers import upstream_request_headers

log = logging.getLogger("crmgw.pipeline")

OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")


class Pipeline:
    """Runs one request through the stages. Holds references, no per-request state."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.in_flight = 0  # requests being handled: the audit append batches only when others are

    async def handle(self, request: web.Request) -> web.StreamResponse:
        flow = Flow(
            request_id=request_id_of(request),
            received_at=self.services.clock().timestamp(),  # the gateway's clock: tests and audit agree
            method=request.method,
            raw_target=request.raw_path,
        )
        self.in_flight += 1
        response: web.StreamResponse | None = None  # what the client is answered (its status is audited)
        answer: web.StreamResponse  # what aiohttp is given back
        cancelled = False
        try:
            response = answer = await self._run(request, flow)
        except GatewayError as exc:
            flow.error = flow.error or exc.reason  # the real reason, even when the client sees 404
            flow.identity = flow.identity or getattr(exc, "identity", None)  # e.g. an off-boarded user
            response = answer = error_response(flow.request_id, client_view(exc, flow, self.services.settings))
        except asyncio.CancelledError:
            timed_out = request.get(REQUEST_TIMED_OUT)
            flow.error = flow.error or ("request-timeout" if timed_out else "client-disconnected")
            if timed_out and not request.writer.output_size:
                flow.status = 504  # what gateway.middleware's timeout answers when nothing was sent yet
            cancelled = True
            raise
        except ClientDisconnected:
            # Nobody is left to answer: the line says why, with no status. The response returned is
            # only for aiohttp, which drops it quietly (re-raising would log a 500 traceback).
            flow.error = "client-disconnected"
            answer = web.Response(status=400)
        except Exception:
            log.exception("request %s failed", flow.request_id)
            flow.error = "internal-error"
            response = answer = error_response(flow.request_id, GatewayError())
        finally:
            # The answer is decided: the request timeout (gateway.middleware) may no longer replace
            # it with a 504, else a timeout during the wait for the audit line below would send the
            # client an answer its line does not record. Nothing awaited since the stage returned
            # or raised, so a timeout that fired earlier already surfaced as CancelledError above.
            deadline = request.get(REQUEST_DEADLINE)
            if deadline is not None:
                deadline.cancel()
            if response is not None:
                flow.status = response.status
            # The audit line, then the observers (metrics, signals, scoring). With other requests in
            # flight the line is queued at once and appended with the others finishing in this loop
            # tick (gateway.audit.log.write_soon); alone, nothing could join it, so it is written
            # now and the answer does not wait a tick for it. A cancelled request (timeout, client
            # gone) is not awaited below, so its line is written now too: the middleware's 504 is
            # sent right after this.
            written = None
            if self.in_flight > 1 and not cancelled:
                written = self.services.finish_soon(flow)
            else:
                self.services.finish(flow)
            self.in_flight -= 1
        if written is not None:
            await written  # in the file before aiohttp sends the answer
        return answer

    async def _run(self, request: web.Request, flow: Flow) -> web.StreamResponse:
        services = self.services
        if not services.audit_ok():
            raise Unavailable("audit-unavailable", detail="audit log cannot be written")
        for name in OVERRIDE_HEADERS:
            if name in request.headers:
                raise BadRequest("method-override-refused", detail=name)
        ruleset = services.store.current  # one snapshot of the rules for the whole request
        flow.ruleset = ruleset
        client_ip, peer_trusted = services.client_ip.resolve(request.remote, request.headers)
        flow.client_ip = ip_text(client_ip) if client_ip else None

        # 1 identity
        identity = await services.identity.identify_async(request.headers, peer_trusted, ruleset.directory)
        flow.identity = identity
        services.governance.enforce(identity)  # suspended by an analyst: 403 user-suspended (gateway/governance)

        # 2 context
        ctx, raw_query = build_context(
            ruleset,
            request_id=flow.request_id,
            method=request.method,
            raw_target=request.raw_path,
            client_ip=client_ip,
            country=services.geo.country(client_ip) if client_ip else None,
            now=services.clock(),
            identity=identity,
            user_agent=request.headers.get("User-Agent", ""),
        )
        flow.ctx = ctx

        # 3 decision (the caller's approved access requests apply like grants: gateway.access)
        decision = ruleset.engine.decide(ctx, await services.access.grants_for(ctx))
        flow.decision = decision
        if not decision.allowed:
            raise Denied.from_decision(decision.reason, decision.status, decision.rules)
        refusal = services.signals.check(identity, ctx)  # the guard: anomaly block / step-up / fail-closed; no I/O
        if refusal is not None:
            raise refusal

        # 4 upstream: the body is read (bounded) because update/delete/create are checked first
        if request.headers.get("Expect", "").lower() == "100-continue":
            # Sent only now that the request is allowed (the route's expect_handler does nothing),
            # so a client never uploads a body the gateway will refuse.
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await read_request_body(request, services.settings.limits.max_request_body_bytes)
        endpoint, obligations = ctx.endpoint, decision.obligations
        if endpoint is None:  # never allowed: an unmapped route is a default deny (gateway.policy)
            raise GatewayError("endpoint-unmapped", detail="allowed without a catalogued endpoint")
        ours, credential = services.upstream_identity_headers(identity, ctx, client_ip)
        headers = upstream_request_headers(
            request.headers,
            strip=services.identity_headers,
            keep_credential=identity.forward_credential,
            add=ours,
            forward=services.forward_headers,
        )
        # One value for every check below, so the body is parsed at most once (gateway.upstream.bodies).
        request_body = RequestBody(body, request.headers.get("Content-Type"))
        check_request(ruleset, ctx, obligations, request.method, request_body)  # nothing sent yet
        flow.targets = count_targets(ctx, request_body)
        if obligations.scope != "all":
            await check_target_records(services, ruleset, ctx, obligations.scope, headers, request_body)
        if obligations.approval is not None:  # four-eyes, after every other check: refused or used up once
            await approvals_gate.check(services, flow, ctx, obligations.approval, request_body)
        url = upstream_url(services.settings.upstream.url, ctx.path, raw_query)
        flow.upstream_credential = credential  # what the CRM is told about who acts (never the secret)
        resp = await send(services.session, upstream_method(request.method, endpoint), url, headers, body)
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
                    max_bytes=services.settings.limits.max_response_body_bytes,
                    directory=ruleset.directory,
                    stream_buffer_bytes=services.settings.limits.stream_buffer_bytes,
                    row_budget=services.signals.row_budget,  # gateway.signals.allowance
                    stream_started=services.stream_started,  # a line before a streamed export's first row
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
            await self.services.alerts.raise_alert(
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


def committed_write(endpoint: Endpoint | None, status: int) -> bool:
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


def client_view(exc: GatewayError, flow: Flow, settings: Settings) -> GatewayError:
    """What the client is told. An out-of-scope record answers exactly like a missing one (same
    status, same body) unless the operator chose ``out_of_scope_answer: forbidden``; a 403 with no
    rule of its own names the allowing rule whose scope excluded the record."""
    if exc.reason == "record-out-of-scope" and settings.out_of_scope_answer == "not_found":
        return RecordNotFound("record-not-found")
    if exc.status == 403 and exc.rule is None and flow.decision is not None and flow.decision.rules:
        return GatewayError(
            exc.reason, rule=flow.decision.rules[0], status=exc.status, error=exc.error, payload=exc.payload
        )
    return exc


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
