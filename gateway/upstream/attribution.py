"""Attribution upstream: telling the CRM who really acted (issue 10, point 6).

With the one service credential the CRM records every write as the service account. Two settings
of ``upstream`` fix that where the CRM allows it:

``on_behalf_of``: headers that carry the acting user in the form the CRM wants::

    on_behalf_of:
      - {header: X-Acting-User, value: email}
      - {header: X-CRM-User-Id, value: crm_user_id, missing: omit_on_reads}

  ``value`` is a directory attribute: ``id``, ``email``, ``name`` or a custom one. A user without
  it is refused (403 ``attribution-missing``) before anything reaches the CRM: a request sent without
  the header is attributed to the service account, which is the very thing this setting is there to
  stop, and some CRMs even read a missing on-behalf-of header as "the integration itself" with all of
  its rights. ``missing: omit_on_reads`` lets reads (catalogue actions view/list/export) go without
  it; writes are still refused, since they are what the CRM records.

``user_credentials``: a personal CRM credential per user (gateway.upstream.user_secrets), injected
*instead of* the service credential, so the CRM authenticates the real user and records them by its
own means. ``fallback: service`` (default: what happened before the setting existed, so turning it on
takes no access away) sends the service credential for users without one; ``fallback: refuse``
answers 403 ``upstream-credential-missing``.

A caller who used the CRM's own login keeps it (gateway.identity.crm_credential): nothing is
injected. Client copies of every header named here are dropped (gateway.upstream.headers forwards by
allow-list) and cannot be listed in ``upstream.forward_headers`` (gateway.settings).

The audit line says which credential went upstream (``upstream_credential``: service, personal,
caller, none) without the secret: :meth:`Attribution.headers` returns the kind beside the headers,
and the pipeline records it on the request's Flow when the request is forwarded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import field_validator, model_validator

from gateway.errors import Forbidden
from gateway.model import Identity, RequestContext
from gateway.rulefile import RuleError, StrictModel
from gateway.upstream.headers import FORWARDED_BY_DEFAULT, HOP_BY_HOP, check_header_name, folded
from gateway.upstream.user_secrets import HEADER_VALUE, UserSecrets

if TYPE_CHECKING:  # annotations only: gateway.settings imports this module
    from gateway.identity.directory import Directory
    from gateway.settings import Upstream

_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Built-in attributes many users share: they cannot say who acted.
_NOT_ONE_USER = frozenset({"team", "department", "region", "branch", "timezone", "status"})
# Names the gateway, or HTTP itself, already owns; a client-default header would let a client's
# copy through whenever the gateway omits its own.
_RESERVED = (
    HOP_BY_HOP
    | FORWARDED_BY_DEFAULT
    | {
        "host",
        "content-length",
        "expect",
        "authorization",
        "cookie",
        "x-request-id",
        "x-forwarded-for",
        "accept-encoding",
    }
)
# A prefix is required: a bare {USER} would read every variable of the process as a user's secret.
_ENV_TEMPLATE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\{USER\}[A-Za-z0-9_]*")
READ_ACTIONS = frozenset({"view", "list", "export"})


def _header(value: str) -> str:
    return check_header_name(value)


class OnBehalfOf(StrictModel):
    header: str
    value: str = "id"
    missing: Literal["refuse", "omit_on_reads"] = "refuse"

    _name = field_validator("header")(classmethod(lambda cls, v: _header(v)))

    @field_validator("value")
    @classmethod
    def _attribute(cls, value: str) -> str:
        if not _ATTRIBUTE.fullmatch(value):
            raise ValueError(f"not an attribute name: {value!r}")
        if value in _NOT_ONE_USER:
            raise ValueError(f"{value!r} is shared by many users; use id, email, name or a custom attribute")
        return value


class UserCredentials(StrictModel):
    header: str = "Authorization"
    format: str = "Bearer {secret}"
    from_env: str | None = None  # e.g. CRM_TOKEN_{USER}
    from_file: str | None = None  # a YAML mapping user id -> secret, not readable by others
    fallback: Literal["service", "refuse"] = "service"

    _name = field_validator("header")(classmethod(lambda cls, v: _header(v)))

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value.count("{secret}") != 1 or "{" in value.replace("{secret}", "") or "}" in value.replace("{secret}", ""):
            raise ValueError("format must contain '{secret}' exactly once and no other braces")
        if not HEADER_VALUE.fullmatch(value.replace("{secret}", "x")):
            raise ValueError("format must be printable ASCII without leading or trailing spaces")
        return value

    @field_validator("from_env")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.count("{USER}") != 1 or not _ENV_TEMPLATE.fullmatch(value):
            raise ValueError("from_env must be a variable name with '{USER}' once, e.g. CRM_TOKEN_{USER}")
        if value.upper().startswith("CRMGW_"):
            raise ValueError("from_env: CRMGW_ variables override gateway.yaml (gateway.envconfig); use another prefix")
        return value

    @model_validator(mode="after")
    def _a_source(self) -> UserCredentials:
        if self.from_env is None and self.from_file is None:
            raise ValueError("give 'from_env', 'from_file' or both")
        return self


def written_headers(
    on_behalf_of: Iterable[OnBehalfOf] | None, user_credentials: UserCredentials | None
) -> dict[str, str]:
    """folded header name -> which setting makes the gateway write it (for forward_headers)."""
    own = {folded(e.header): f"on_behalf_of: the gateway sets {e.header!r}" for e in on_behalf_of or ()}
    if user_credentials is not None:
        own[folded(user_credentials.header)] = f"user_credentials: the gateway sets {user_credentials.header!r}"
    return own


def upstream_problems(upstream: Upstream) -> list[str]:
    """Clashes between the headers the upstream section makes the gateway write (gateway.settings)."""
    problems: list[str] = []
    seen: dict[str, str] = {}  # folded header -> the setting that writes it first
    ids = upstream.identity_headers
    named = [(h, "identity_headers") for h in (ids.user, ids.roles, ids.email) if h]
    if upstream.credential is not None:
        named.append((upstream.credential.header, "credential.header"))
    for entry in upstream.on_behalf_of:
        if folded(entry.header) in _RESERVED:
            problems.append(f"on_behalf_of: {entry.header!r} is a header the gateway or HTTP already uses")
        named.append((entry.header, "on_behalf_of"))
    creds = upstream.user_credentials
    if creds is not None:
        if folded(creds.header) in _RESERVED - {"authorization", "cookie"}:
            problems.append(f"user_credentials.header: {creds.header!r} is a header the gateway or HTTP already uses")
        if creds.fallback == "service" and upstream.credential is None:
            problems.append("user_credentials.fallback: service needs upstream.credential (or say fallback: refuse)")
        cred = upstream.credential
        if (
            cred is not None
            and cred.value_env
            and creds.from_env
            and re.fullmatch(re.escape(creds.from_env).replace(r"\{USER\}", "[A-Z0-9_]+"), cred.value_env)
        ):
            problems.append(
                f"user_credentials.from_env would read the service credential ${cred.value_env} "
                "as a user's; use another prefix"
            )
        # The personal credential replaces the service one: the same header is expected, not a clash.
        if not (cred is not None and folded(cred.header) == folded(creds.header)):
            named.append((creds.header, "user_credentials.header"))
    for header, where in named:
        if folded(header) in seen:
            problems.append(f"{where}: {header!r} is also set by {seen[folded(header)]}")
        seen.setdefault(folded(header), where)
    return problems


def load_problems(
    upstream: Upstream, path: Callable[[str], Path], at: Callable[[str, str], RuleError], reload_interval: float = 1.0
) -> tuple[UserSecrets | None, list[RuleError]]:
    """Load the per-user credentials now: (secrets, []) or (None, problems). ``None, []``: not set."""
    creds = upstream.user_credentials
    if creds is None:
        return None, []
    secrets = UserSecrets(
        fmt=creds.format,
        from_env=creds.from_env,
        reload_interval=reload_interval,
        file=path(creds.from_file) if creds.from_file else None,
    )
    problems = secrets.load(at)
    return (None, problems) if problems else (secrets, [])


class Attribution:
    """Builds the attribution headers of one request: on-behalf-of and the upstream credential."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        service: tuple[str, str] | None,
        path: Callable[[str], Path],
        reload_interval: float,
    ):
        self.on_behalf_of = tuple(upstream.on_behalf_of)
        self.creds: UserCredentials | None = upstream.user_credentials
        self.service = service
        self.secrets, problems = load_problems(
            upstream,
            path,
            lambda key, msg: RuleError("<settings>", 1, 1, f"upstream.user_credentials.{key}: {msg}"),
            reload_interval,
        )
        if problems:
            raise ValueError("\n".join(str(p) for p in problems))

    def headers(self, identity: Identity, ctx: RequestContext, directory: Directory) -> tuple[dict[str, str], str]:
        """The headers and the credential kind (service, personal, caller, none); raises Forbidden
        (nothing has been sent yet) when the CRM could not be told who acts."""
        endpoint = ctx.endpoint
        reading = endpoint is not None and endpoint.action in READ_ACTIONS
        user = identity.user
        out: dict[str, str] = {}
        for entry in self.on_behalf_of:
            value = user.attribute(entry.value)
            if not value:
                if reading and entry.missing == "omit_on_reads":
                    continue
                raise Forbidden(
                    "attribution-missing", detail=f"user {user.id!r} has no {entry.value!r} for {entry.header}"
                )
            if not HEADER_VALUE.fullmatch(value):
                raise Forbidden(
                    "attribution-invalid",
                    detail=f"user {user.id!r}: {entry.value!r} is not a valid {entry.header} value",
                )
            out[entry.header] = value
        kind, credential = self._credential(identity, directory)
        if credential is not None:
            out[credential[0]] = credential[1]
        return out, kind

    def _credential(self, identity: Identity, directory: Directory) -> tuple[str, tuple[str, str] | None]:
        if identity.forward_credential:
            return "caller", None  # the CRM's own login, forwarded unchanged by the pipeline
        if self.secrets is not None and self.creds is not None:
            value = self.secrets.lookup(identity.user.id, directory)
            if value is not None:
                return "personal", (self.creds.header, value)
            if self.creds.fallback == "refuse":
                raise Forbidden(
                    "upstream-credential-missing",
                    detail=f"no personal CRM credential for {identity.user.id!r} "
                    "(upstream.user_credentials.fallback: refuse)",
                )
        if self.service is not None:
            return "service", self.service
        return "none", None
