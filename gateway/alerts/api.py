"""The admin JSON API for alerts (the console of issue 4 is built on it).

    GET  {prefix}/api/alerts                 ?status=open,acknowledged&level=&type=&user=&since=&until=&limit=
    GET  {prefix}/api/alerts/counts          per status, per level, open per level
    GET  {prefix}/api/alerts/{id}
    POST {prefix}/api/alerts/{id}/ack | /resolve | /false-positive | /verdict | /assign | /note
         body (JSON object, Content-Type: application/json):
         {"note": "...", "assignee": "...", "verdict": "...", "determination": "..."}
    POST {prefix}/api/alerts/bulk            {"ids": [...], "action": "ack" | "assign" | "resolve",
                                              "assignee", "verdict", "determination", "note"}
                                             -> {"done": [ids], "refused": {id: reason code}}

A verdict (true_positive, benign_true_positive, false_positive) with an optional determination
(gateway.alerts.model.DETERMINATIONS) closes the alert with the status it implies, or corrects the
verdict of an alert already closed with that status; ``resolve`` and ``false-positive`` take one
too, when it agrees with them. Bulk changes go through gateway/alerts/triage.py: each alert is
changed (and journalled) on its own, one refused does not stop the others.

Every request is authorised by the ``authorize`` callable the gateway passes (its admin roles);
the actor of an action is the authenticated user id, recorded in the alert's history. State changes
are POST only and must carry a JSON content type: a cross-site HTML form cannot send one without a
CORS preflight, which this API never grants. Errors answer ``{error, reason, request_id}``
(gateway.answers) with fixed codes: what exactly was wrong is logged, never echoed.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from gateway.alerts.model import (
    DETERMINATIONS,
    LEVELS,
    STATUSES,
    VERDICTS,
    AlertNotFound,
    InvalidTransition,
    OwnAlert,
    parse_time,
)
from gateway.alerts.store import AlertStore, JournalUnavailable
from gateway.alerts.triage import BULK_ACTIONS, MAX_BULK, bulk_triage
from gateway.answers import no_store_json, refusal
from gateway.errors import GatewayError
from gateway.model import Identity

log = logging.getLogger("crmgw.alerts.api")
MAX_BODY = 64 * 1024
MAX_LIMIT = 1000
Handler = Callable[[web.Request, Identity, AlertStore], Awaitable[web.Response]]
ACTIONS: dict[str, dict[str, str]] = {
    "ack": {"status": "acknowledged"},
    "resolve": {"status": "resolved"},
    "false-positive": {"status": "false_positive"},
    "verdict": {},
    "assign": {},
    "note": {},
}
TAKES_VERDICT = {"resolve", "false-positive", "verdict"}
BODY_FIELDS = {"note", "assignee", "verdict", "determination"}


def _error(request: web.Request, status: int, error: str, reason: str) -> web.Response:
    return refusal(request, status, error, reason)


class QueryInvalid(ValueError):
    """A bad filter: answered 400 ``query-invalid``; the message goes to the log, not the client."""


class BodyInvalid(ValueError):
    """A bad action body: answered 400 ``body-invalid``; the message goes to the log, not the client."""


def _query(request: web.Request) -> dict[str, Any]:
    q = request.query
    unknown = set(q) - {"status", "level", "type", "user", "since", "until", "limit"}
    if unknown:
        raise QueryInvalid(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    if q.get("status"):
        statuses = set(q["status"].split(","))
        if statuses - set(STATUSES):
            raise QueryInvalid(f"status must be among {', '.join(STATUSES)}")
        out["status"] = statuses
    if q.get("level"):
        if q["level"] not in LEVELS:
            raise QueryInvalid(f"level must be one of {', '.join(LEVELS)}")
        out["level"] = q["level"]
    for name in ("type", "user"):
        if q.get(name):
            out[name] = q[name]
    for name in ("since", "until"):
        if q.get(name):
            try:
                out[name] = parse_time(q[name])
            except ValueError:
                raise QueryInvalid(f"{name} must be an ISO time with a UTC offset") from None
    try:
        limit = int(q.get("limit", "100"))
    except ValueError:
        raise QueryInvalid("limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryInvalid(f"limit must be between 1 and {MAX_LIMIT}")
    out["limit"] = limit
    return out


async def _json_object(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise BodyInvalid("send a JSON object with Content-Type: application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BodyInvalid("body too large")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise BodyInvalid("body too large")
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise BodyInvalid("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BodyInvalid("body must be a JSON object")
    return data


def _strings(data: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    """``data`` with only ``allowed`` keys, each a string or null; a verdict and determination known."""
    if set(data) - allowed:
        raise BodyInvalid(f"body fields are among {', '.join(sorted(allowed))}")
    for key, value in data.items():
        if value is not None and not isinstance(value, str):
            raise BodyInvalid(f"{key} must be a string")
    if data.get("verdict") is not None and data["verdict"] not in VERDICTS:
        raise BodyInvalid(f"verdict must be one of {', '.join(VERDICTS)}")
    if data.get("determination") is not None and data["determination"] not in DETERMINATIONS:
        raise BodyInvalid(f"determination must be one of {', '.join(DETERMINATIONS)}")
    if data.get("determination") is not None and data.get("verdict") is None:
        raise BodyInvalid("a determination needs a verdict")
    return data


async def _body(request: web.Request, action: str) -> dict[str, Any]:
    allowed = BODY_FIELDS if action in TAKES_VERDICT else BODY_FIELDS - {"verdict", "determination"}
    return _strings(await _json_object(request), allowed)


async def _bulk_body(request: web.Request) -> tuple[list[str], dict[str, Any]]:
    data = await _json_object(request)
    ids = data.pop("ids", None)
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and 0 < len(i) <= 40 for i in ids):
        raise BodyInvalid("ids must be a non-empty list of alert ids")
    if len(ids) > MAX_BULK:
        raise BodyInvalid(f"at most {MAX_BULK} ids at once")
    fields = _strings(data, BODY_FIELDS | {"action"})
    if fields.get("action") not in BULK_ACTIONS:
        raise BodyInvalid(f"action must be one of {', '.join(BULK_ACTIONS)}")
    if fields["action"] == "resolve" and not fields.get("verdict"):
        raise BodyInvalid("resolve needs a verdict")
    if fields["action"] != "resolve" and fields.get("verdict") is not None:
        raise BodyInvalid("only resolve takes a verdict")
    if fields["action"] == "assign" and fields.get("assignee") is None:
        raise BodyInvalid("assign needs an 'assignee' (\"\" to unassign)")
    return ids, fields


def register_alert_routes(
    app: web.Application,
    *,
    prefix: str,
    store_getter: Callable[[], AlertStore | None],
    authorize: Callable[[web.Request], Identity | Awaitable[Identity]],
) -> None:
    base = prefix.rstrip("/") + "/api/alerts"

    async def identify(request: web.Request) -> Identity:
        identity = authorize(request)
        if inspect.isawaitable(identity):
            return await identity
        return identity

    def guarded(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapper(request: web.Request) -> web.Response:
            try:
                identity = await identify(request)
            except GatewayError as exc:
                log.info("alerts API refused %s %s: %s", request.method, request.path, exc)
                return _error(request, exc.status, exc.error, exc.reason)
            store = store_getter()
            if store is None:
                return _error(request, 503, "unavailable", "alerts-unavailable")
            try:
                return await handler(request, identity, store)
            # Fixed codes for the client; what was wrong (our own words or a lower layer's) is logged.
            except OwnAlert as exc:  # before ValueError: it is one
                log.warning("alerts API %s %s by %s: %s", request.method, request.path, identity.user.id, exc)
                return _error(request, 403, "forbidden", OwnAlert.reason)
            except InvalidTransition as exc:  # before ValueError: it is one
                log.info("alerts API %s %s: %s", request.method, request.path, exc)
                return _error(request, 409, "conflict", "transition-invalid")
            except ValueError as exc:
                log.info("alerts API %s %s: %s", request.method, request.path, exc)
                reason = {QueryInvalid: "query-invalid", BodyInvalid: "body-invalid"}.get(type(exc), "action-invalid")
                return _error(request, 400, "bad-request", reason)
            except AlertNotFound:
                return _error(request, 404, "not-found", "alert-unknown")
            except JournalUnavailable as exc:
                log.error("alerts API: %s", exc)
                return _error(request, 503, "unavailable", "alerts-journal-unavailable")

        return wrapper

    async def list_alerts(request: web.Request, identity: Identity, store: AlertStore) -> web.Response:
        alerts = await store.list(**_query(request))
        return no_store_json(
            {"alerts": [a.to_dict() for a in alerts], "count": len(alerts), "degraded": store.health()["degraded"]}
        )

    async def counts(request: web.Request, identity: Identity, store: AlertStore) -> web.Response:
        return no_store_json(await store.counts())

    async def get_alert(request: web.Request, identity: Identity, store: AlertStore) -> web.Response:
        alert = await store.get(request.match_info["id"])
        if alert is None:
            raise AlertNotFound(request.match_info["id"])
        return no_store_json(alert.to_dict())

    async def act(request: web.Request, identity: Identity, store: AlertStore) -> web.Response:
        action = request.match_info["action"]
        if action not in ACTIONS:
            return _error(request, 404, "not-found", "action-unknown")
        body = await _body(request, action)
        kwargs = dict(ACTIONS[action])
        if action == "assign" and body.get("assignee") is None:
            raise BodyInvalid("assign needs an 'assignee' (\"\" to unassign)")
        if action == "note" and not body.get("note"):
            raise BodyInvalid("note needs a 'note'")
        if action == "verdict" and not body.get("verdict"):
            raise BodyInvalid("verdict needs a 'verdict'")
        alert = await store.transition(
            request.match_info["id"],
            actor=identity.user.id,
            assignee=body.get("assignee"),
            note=body.get("note"),
            verdict=body.get("verdict"),
            determination=body.get("determination"),
            **kwargs,
        )
        log.info("alert %s: %s by %s", alert.id, action, identity.user.id)
        return no_store_json(alert.to_dict())

    async def bulk(request: web.Request, identity: Identity, store: AlertStore) -> web.Response:
        ids, fields = await _bulk_body(request)
        result = await bulk_triage(
            store,
            ids,
            actor=identity.user.id,
            action=fields["action"],
            assignee=fields.get("assignee"),
            verdict=fields.get("verdict"),
            determination=fields.get("determination"),
            note=fields.get("note"),
        )
        for alert_id, why in result.refused.items():  # the words stay in the log, the client gets codes
            log.info("alerts API bulk %s: %s refused: %s", fields["action"], alert_id, why)
        log.info(
            "alerts API: bulk %s by %s: %d done, %d refused",
            fields["action"],
            identity.user.id,
            len(result.done),
            len(result.refused),
        )
        return no_store_json({"done": result.done, "refused": result.codes})

    app.router.add_get(base, guarded(list_alerts))
    app.router.add_get(base + "/counts", guarded(counts))
    app.router.add_get(base + "/{id}", guarded(get_alert))
    app.router.add_post(base + "/bulk", guarded(bulk))
    app.router.add_post(base + "/{id}/{action}", guarded(act))
