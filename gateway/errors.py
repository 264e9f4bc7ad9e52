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


class GatewayError(Exception):
    status = 500
    error = "internal-error"

    def __init__(self, reason: str | None = None, detail: str = "", rule: str | None = None):
        self.reason = reason or self.error
        self.detail = detail
        self.rule = rule
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
