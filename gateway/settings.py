"""Gateway settings (gateway.yaml), validated at start-up with exact messages.

The process refuses to start on any error: ``load_settings`` returns every problem as
``file:line:col: message`` (the same strict YAML loader as the rule files), and
``crmgw serve`` prints them and exits 2. Relative paths are resolved against the settings file's
directory so a deployment can be moved as one folder.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.alerts.config import AlertsConfig
from gateway.console.config import ConsoleConfig
from gateway.envconfig import EnvOverrideError, apply_env
from gateway.identity.config import IdentityConfig
from gateway.scoring import ScoringConfig
from gateway.signals.config import SignalsConfig
from gateway.rulefile import RuleError, parse_yaml, validate


def check_networks(value: list[str]) -> list[str]:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"not an IP network: {item!r}") from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)


class UpstreamCredential(_Strict):
    """A credential the gateway injects towards the CRM when the caller did not use the CRM's own."""

    header: str = "Authorization"
    value: str | None = None
    value_env: str | None = None

    @model_validator(mode="after")
    def _one_source(self):
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


class IdentityHeaders(_Strict):
    """Headers carrying the verified identity to the CRM (client copies are always stripped)."""

    user: str = "X-CRM-User"
    roles: str | None = "X-CRM-Roles"
    email: str | None = None


class Upstream(_Strict):
    url: str
    connect_timeout: float = Field(5.0, gt=0)
    total_timeout: float = Field(30.0, gt=0)
    max_connections: int = Field(100, ge=1)
    max_connections_per_host: int = Field(0, ge=0)
    credential: UpstreamCredential | None = None
    identity_headers: IdentityHeaders = IdentityHeaders()

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("upstream url must start with http:// or https://")
        return value.rstrip("/")


class Audit(_Strict):
    path: str = "var/audit.log"
    max_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    backups: int = Field(5, ge=0)
    # deny: while the audit log cannot be written, requests are refused (503 audit-unavailable)
    # allow: requests go on; every unwritten line goes to stderr and is counted as dropped
    on_failure: Literal["deny", "allow"] = "deny"


class Limits(_Strict):
    max_request_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    # the largest response body the filter buffers; larger bodies on record endpoints -> 502
    max_response_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_connections: int = Field(1024, ge=0)  # per worker; over it: 503 too-many-connections
    request_timeout: float = Field(60.0, ge=0)  # whole request, gateway included: 504 request-timeout
    drain_timeout: float = Field(30.0, gt=0)  # SIGTERM: how long in-flight requests may finish
    # A connection must deliver a complete request head within this many seconds of opening (or of
    # its previous answer): slowloris guard, also the idle keep-alive limit.
    header_timeout: float = Field(15.0, gt=0)


class Geo(_Strict):
    mmdb: str | None = None
    overrides: dict[str, str] = {}


class Admin(_Strict):
    prefix: str = "/_gw"
    # Peers allowed to read the detailed health (rule file errors, paths); others get 403.
    allow_networks: list[str] = ["127.0.0.0/8", "::1/128"]

    _networks = field_validator("allow_networks")(classmethod(lambda cls, v: check_networks(v)))

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.startswith("/") or value.endswith("/") or len(value) < 2:
            raise ValueError("admin prefix must start with '/' and not end with '/'")
        return value


class Settings(_Strict):
    listen: Listen = Listen()
    upstream: Upstream
    rules_dir: str = "rules"
    reload_interval: float = Field(1.0, gt=0)
    redis_url: str | None = None
    trusted_proxies: list[str] = []
    audit: Audit = Audit()
    limits: Limits = Limits()
    geo: Geo = Geo()
    admin: Admin = Admin()
    identity: IdentityConfig
    alerts: AlertsConfig = AlertsConfig()
    signals: SignalsConfig = SignalsConfig()
    console: ConsoleConfig = ConsoleConfig()
    scoring: ScoringConfig = ScoringConfig()
    # Resolved against base_dir by load_settings; not read from the file.
    base_dir: str = Field(".", exclude=True)

    _cidrs = field_validator("trusted_proxies")(classmethod(lambda cls, v: check_networks(v)))

    def path(self, value: str) -> Path:
        """A settings path resolved against the settings file's folder."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p


def load_settings(path: Path) -> tuple[Settings | None, list[RuleError]]:
    """Load gateway.yaml; returns (settings, []) or (None, every problem found)."""
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
    try:
        data = apply_env(dict(doc.data), os.environ)
    except EnvOverrideError as exc:
        return None, [RuleError(display, 1, 1, str(exc))]
    data["base_dir"] = str(path.resolve().parent)
    doc.data = data
    settings, errors = validate(doc, Settings)
    if settings is None:
        return None, errors
    problems = check_paths(settings, display)
    return (None, problems) if problems else (settings, [])


def check_paths(settings: Settings, display: str) -> list[RuleError]:
    """File-system checks pydantic cannot do: the rules folder must exist, the audit folder too."""
    problems = []
    rules = settings.path(settings.rules_dir)
    if not rules.is_dir():
        problems.append(RuleError(display, 1, 1, f"rules_dir: not a directory: {rules}"))
    audit_dir = settings.path(settings.audit.path).parent
    if not audit_dir.exists():
        try:
            audit_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problems.append(RuleError(display, 1, 1, f"audit.path: cannot create {audit_dir}: {exc}"))
    return problems
