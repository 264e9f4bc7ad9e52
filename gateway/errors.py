"""Errors the gateway answers with, each with an HTTP status and a stable code.

    GatewayError                      (500 internal-error)
    ├── BadRequest                    (400 bad-request)
    │   └── AmbiguousRequest          (400 path-ambiguous, query-ambiguous, ...)
    ├── Unauthenticated               (401 unauthenticated, token-invalid, token-expired, ...)
    ├── Forbidden                     (403 user-inactive, record-out-of-scope, ...)
    ├── RecordNotFound                (404 record-not-found: missing, or hidden because out of scope)
    ├── UpstreamError                 (502 upstream-unavailable / 504 upstream-timeout)
    ├── ObligationUnenforceable       (502 obligation-unenforceable)
    └── Unavailable                   (503 audit-unavailable, ...)

The client sees ``{error, reason, request_id}`` (plus ``rule`` for policy denials); the detail goes
to the log and the audit line, never to the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class GatewayError(Exception):
    """A refusal. Built complete and never changed after it is raised: a different answer is a
    different error (``status``/``error`` override the class's for answers decided by data, such
    as a rule's denial status)."""

    status: int = 500
    error: str = "internal-error"

    def __init__(
        self,
        reason: str | None = None,
        detail: str = "",
        rule: str | None = None,
        *,
        status: int | None = None,
        error: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ):
        if status is not None:
            self.status = status
        if error is not None:
            self.error = error
        self.reason = reason or self.error
        self.detail = detail
        self.rule = rule
        self.payload: Mapping[str, Any] = payload or {}  # named fields the client needs (approval_id)
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class BadRequest(GatewayError):
    status = 400
    error = "bad-request"


class AmbiguousRequest(BadRequest):
    error = "request-ambiguous"


class Unauthenticated(GatewayError):
    status = 401
    error = "unauthenticated"


class Forbidden(GatewayError):
    status = 403
    error = "forbidden"


class RecordNotFound(GatewayError):
    status = 404
    error = "not-found"


class UpstreamError(GatewayError):
    status = 502
    error = "upstream-unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    error = "upstream-timeout"


class ObligationUnenforceable(GatewayError):
    status = 502
    error = "obligation-unenforceable"


class Unavailable(GatewayError):
    status = 503
    error = "unavailable"


class Denied(Forbidden):
    """The rules said no: 403 with the deciding rule, or 401 when the rule asks for a login."""

    @classmethod
    def from_decision(cls, reason: str, status: int, rules: tuple[str, ...] | list[str]) -> Denied:
        return cls(
            reason,
            rule=rules[0] if rules else None,
            status=status,
            error="unauthenticated" if status == 401 else None,
        )
