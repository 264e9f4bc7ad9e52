"""Gateway settings (gateway.yaml), validated at start-up with exact messages.

The process refuses to start on any error: ``load_settings`` returns every problem as
``file:line:col: message`` (the same strict YAML loader as the rule files), and
``crmgw serve`` prints them and exits 2. Relative paths are resolved against the settings file's
directory so a deployment can be moved as one folder.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from gateway.alerts.config import AlertsConfig
from gateway.console.config import ConsoleConfig
from gateway.envconfig import EnvError, EnvOverrideError, apply_overrides, origin_of, secret_names, split_environ
from gateway.identity.config import IdentityConfig
from gateway.rulefile import RuleError, StrictModel, parse_yaml, validate
from gateway.scoring import ScoringConfig
from gateway.signals.config import SignalsConfig
from gateway.upstream.attribution import OnBehalfOf, UserCredentials, load_problems, upstream_problems, written_headers
from gateway.upstream.headers import HOP_BY_HOP, NEVER_FORWARDED, check_header_name, folded

log = logging.getLogger("crmgw.settings")


def check_networks(value: list[str]) -> list[str]:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"not an IP network: {item!r}") from None
    return value


# RFC 9110 token characters; '_' is refused on its own below (CGI servers read it as '-').
# check_header_name: one definition, in gateway.upstream.headers (the attribution uses it too)


def check_forwardable(value: str) -> str:
    """One ``upstream.forward_headers`` entry: a header name the gateway may pass on from clients."""
    check_header_name(value)
    why = NEVER_FORWARDED.get(value.lower())
    if why:
        raise ValueError(f"{value!r} cannot be forwarded from clients: {why}")
    return value


class Listen(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class UpstreamCredential(StrictModel):
    """A credential the gateway injects towards the CRM when the caller did not use the CRM's own."""

    header: str = "Authorization"
    value: str | None = None
    value_env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> UpstreamCredential:
        if (self.value is None) == (self.value_env is None):
            raise ValueError("give exactly one of 'value' or 'value_env'")
        return self

    def resolve(self) -> str:
        if self.value is not None:
            return self.value
        value = os.environ.get(self.value_env or "")
        if not value:
            raise ValueError(f"environment variable {self.value_env!r} is not set")
        return value


class IdentityHeaders(StrictModel):
    """Headers carrying the verified identity to the CRM (client copies are always stripped)."""

    user: str = "X-CRM-User"
    roles: str | None = "X-CRM-Roles"
    email: str | None = None


class Upstream(StrictModel):
    url: str
    connect_timeout: float = Field(5.0, gt=0)
    total_timeout: float = Field(30.0, gt=0)
    max_connections: int = Field(100, ge=1)
    max_connections_per_host: int = Field(0, ge=0)
    credential: UpstreamCredential | None = None
    identity_headers: IdentityHeaders = IdentityHeaders()
    # Who acted, for the CRM's own records (gateway.upstream.attribution): headers naming the user,
    # and personal CRM credentials injected instead of the service one.
    on_behalf_of: list[OnBehalfOf] = Field(default_factory=list)
    user_credentials: UserCredentials | None = None
    # Client request headers forwarded to the CRM besides the standard ones
    # (gateway.upstream.headers.FORWARDED_BY_DEFAULT), e.g. [X-Tenant, X-CSRF-Token].
    forward_headers: list[str] = Field(default_factory=list)

    @field_validator("forward_headers")
    @classmethod
    def _forwardable(cls, value: list[str], info: ValidationInfo) -> list[str]:
        problems = []
        for name in value:
            try:
                check_forwardable(name)
            except ValueError as exc:
                problems.append(str(exc))
        # The headers this section makes the gateway write itself (a client copy is never passed on).
        own: dict[str, str] = {}  # folded header -> why the gateway sets it
        ids = info.data.get("identity_headers")
        for header in (ids.user, ids.roles, ids.email) if ids is not None else ():
            if header:
                own[folded(header)] = f"identity_headers: the gateway sets {header!r}"
        cred = info.data.get("credential")
        if cred is not None:
            own[folded(cred.header)] = f"credential: the gateway sets {cred.header!r}"
        own.update(written_headers(info.data.get("on_behalf_of"), info.data.get("user_credentials")))
        for name in value:
            if folded(name) in own:
                problems.append(f"{name!r} cannot be forwarded from clients: {own[folded(name)]}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _attribution_headers(self) -> Upstream:
        problems = upstream_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("upstream url must start with http:// or https://")
        return value.rstrip("/")


class Audit(StrictModel):
    path: str = "var/audit.log"
    max_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    backups: int = Field(5, ge=0)
    # deny: while the audit log cannot be written, requests are refused (503 audit-unavailable)
    # allow: requests go on; every unwritten line goes to stderr and is counted as dropped
    on_failure: Literal["deny", "allow"] = "deny"
    # Signed chain heads (gateway.audit.heads): the variable holding an HMAC key (16+ characters);
    # unset: no signing (the head is still on /metrics). Each worker appends the head, when it
    # moved, every head_interval seconds to heads_path (resolved like path).
    head_key_env: str | None = None
    heads_path: str = "var/audit-heads.jsonl"
    head_interval: float = Field(60.0, gt=0)


class Limits(StrictModel):
    max_request_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    # the largest response body the filter buffers; larger bodies on record endpoints -> 502
    max_response_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    # a streamed answer (CSV exports: gateway.response.stream) holds at most about this much at once
    # (one decoded piece and one pending row); a longer row cuts the stream (fail closed)
    stream_buffer_bytes: int = Field(1024 * 1024, ge=4096)
    max_connections: int = Field(1024, ge=0)  # per worker; over it: 503 too-many-connections
    request_timeout: float = Field(60.0, ge=0)  # whole request, gateway included: 504 request-timeout
    drain_timeout: float = Field(30.0, gt=0)  # SIGTERM: how long in-flight requests may finish
    # A connection must deliver a complete request head within this many seconds of opening (or of
    # its previous answer): slowloris guard, also the idle keep-alive limit.
    header_timeout: float = Field(15.0, gt=0)


class Geo(StrictModel):
    mmdb: str | None = None
    overrides: dict[str, str] = Field(default_factory=dict)


class Admin(StrictModel):
    prefix: str = "/_gw"
    # Peers allowed to read the detailed health (rule file errors, paths); others get 403.
    allow_networks: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])

    _networks = field_validator("allow_networks")(classmethod(lambda cls, v: check_networks(v)))

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.startswith("/") or value.endswith("/") or len(value) < 2:
            raise ValueError("admin prefix must start with '/' and not end with '/'")
        return value


class Settings(StrictModel):
    listen: Listen = Listen()
    upstream: Upstream
    rules_dir: str = "rules"
    reload_interval: float = Field(1.0, gt=0)
    # Without a publish marker (rules/.revision) a changed rules folder is loaded once its content
    # stayed the same this long (gateway.rulestore).
    reload_settle: float = Field(2.0, ge=0)
    redis_url: str | None = None
    trusted_proxies: list[str] = Field(default_factory=list)
    # The ONE header the trusted proxies write the client's address into: X-Forwarded-For,
    # Forwarded (RFC 7239), X-Real-IP or any header name. No other forwarding header is read.
    client_address_header: str = "X-Forwarded-For"
    audit: Audit = Audit()
    limits: Limits = Limits()
    geo: Geo = Geo()
    admin: Admin = Admin()
    identity: IdentityConfig
    alerts: AlertsConfig = AlertsConfig()
    signals: SignalsConfig = SignalsConfig()
    console: ConsoleConfig = ConsoleConfig()
    scoring: ScoringConfig = ScoringConfig()
    # What a restricted caller is told about a record outside their scope: not_found answers exactly
    # like a missing record (no existence oracle); forbidden answers 403 record-out-of-scope.
    out_of_scope_answer: Literal["not_found", "forbidden"] = "not_found"
    # The variable holding the key of `hash` masks (32+ characters, the same on every instance so
    # pseudonyms agree; unset: a random key per start). gateway.response.mask.
    mask_key_env: str = "CRMGW_MASK_KEY"
    # The one folder the gateway writes to (CRMGW_DATA_DIR): relative writable paths (audit.path,
    # alerts.journal) resolve against it, and the workers' metrics live in its metrics/ folder.
    # Unset: they resolve against the settings file's folder, like every other path.
    data_dir: str | None = None
    # Resolved against base_dir by load_settings; not read from the file.
    base_dir: str = Field(".", exclude=True)

    _cidrs = field_validator("trusted_proxies")(classmethod(lambda cls, v: check_networks(v)))

    @field_validator("client_address_header")
    @classmethod
    def _address_header(cls, value: str, info: ValidationInfo) -> str:
        check_header_name(value)
        if value.lower() in HOP_BY_HOP:
            raise ValueError(f"{value!r} is a hop-by-hop header")
        upstream = info.data.get("upstream")
        if upstream is not None and folded(value) in {folded(h) for h in upstream.forward_headers}:
            raise ValueError(
                f"{value!r} is also in upstream.forward_headers: the proxy's word about the "
                "client address is read by the gateway, never passed on"
            )
        return value

    @field_validator("identity")
    @classmethod
    def _identity_headers_not_forwarded(cls, value: IdentityConfig, info: ValidationInfo) -> IdentityConfig:
        upstream = info.data.get("upstream")
        if upstream is None:
            return value
        read: dict[str, str] = {}  # folded header -> the setting that names it
        if value.api_key is not None:
            read[folded(value.api_key.header)] = "identity.api_key.header"
        if value.trusted_header is not None:
            read[folded(value.trusted_header.header)] = "identity.trusted_header.header"
            if value.trusted_header.mfa_header:
                read[folded(value.trusted_header.mfa_header)] = "identity.trusted_header.mfa_header"
        clashes = [f"{h!r} ({read[folded(h)]})" for h in upstream.forward_headers if folded(h) in read]
        if clashes:
            raise ValueError(
                f"upstream.forward_headers lists a credential the gateway reads: "
                f"{', '.join(clashes)}; it is never forwarded from clients"
            )
        return value

    def path(self, value: str) -> Path:
        """A settings path resolved against the settings file's folder."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def data_root(self) -> Path:
        """The folder relative writable paths resolve against: ``data_dir``, else the settings' folder."""
        return self.path(self.data_dir) if self.data_dir else Path(self.base_dir)

    def data_path(self, value: str) -> Path:
        """A writable path (audit log, alerts journal) resolved against ``data_root()``."""
        return self.data_root() / value  # an absolute value stays as it is


def load_settings(path: Path) -> tuple[Settings | None, Sequence[RuleError | EnvError]]:
    """Load gateway.yaml; returns (settings, []) or (None, every problem found).

    A problem is a ``file:line:col`` RuleError, or an EnvError naming the variable that caused it.
    """
    display = str(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [RuleError(display, 1, 1, f"cannot read settings: {exc}")]
    doc, errors = parse_yaml(text, display)
    if doc is None or errors:
        return None, errors
    if not isinstance(doc.data, dict):
        return None, [doc.error((), "settings must be a mapping")]
    overrides, others = split_environ(os.environ, Settings)
    try:
        data, origins = apply_overrides(dict(doc.data), overrides)
    except EnvOverrideError as exc:
        return None, [EnvError(str(exc).split(":", 1)[0], str(exc).split(":", 1)[1].strip())]
    data["base_dir"] = str(path.resolve().parent)
    doc.data = data
    settings, errors = validate(doc, Settings)
    if settings is None:
        return None, [_blame_variable(e, origins) for e in errors]
    secrets = secret_names(settings)
    for variable, key_path, _ in overrides:
        if variable in secrets:
            return None, [
                EnvError(
                    variable,
                    f"named by {secrets[variable]} as a secret, and also the override of "
                    f"{'.'.join(key_path)}: give the secret another name",
                )
            ]
    for name in others:
        if name not in secrets:
            log.warning("%s is set but is neither a gateway.yaml key nor a secret %s names; ignored", name, display)
    problems = check_paths(settings, display)
    # Per-user CRM credentials are read now too, so a readable-by-all secrets file stops start-up here.
    problems += load_problems(
        settings.upstream,
        settings.path,
        lambda key, msg: doc.error(("upstream", "user_credentials", key), f"upstream.user_credentials.{key}: {msg}"),
    )[1]
    return (None, problems) if problems else (settings, [])


def _blame_variable(error: RuleError, origins: Mapping[tuple[str, ...], str]) -> RuleError | EnvError:
    """A validation error about a value the environment set names the variable, not a file line."""
    where = error.message.split(":", 1)[0]
    variable = origin_of(tuple(where.split(".")), origins) if where != "(top level)" else None
    return EnvError(variable, error.message) if variable else error


def check_paths(settings: Settings, display: str) -> list[RuleError]:
    """File-system checks pydantic cannot do: the rules folder must exist, the audit folder too."""
    problems = []
    rules = settings.path(settings.rules_dir)
    if not rules.is_dir():
        problems.append(RuleError(display, 1, 1, f"rules_dir: not a directory: {rules}"))
    audit_dir = settings.data_path(settings.audit.path).parent
    if not audit_dir.exists():
        try:
            audit_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problems.append(RuleError(display, 1, 1, f"audit.path: cannot create {audit_dir}: {exc}"))
    return problems
