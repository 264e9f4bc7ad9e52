"""The ``console:`` section of gateway.yaml.

```yaml
console:
  enabled: true
  roles: [security_analyst, admin]        # only these roles get in (pages and APIs)
  session_secret_env: CRMGW_CONSOLE_SECRET   # >= 32 characters; unset: a random secret per instance
  session_max_age: 28800                  # seconds a login lasts (the token's own expiry still applies)
  chart_days: 14                          # days of activity on an alert's chart
  allowed_origins: [https://gw.example]   # extra origins accepted on POST (behind a TLS proxy)
  lift_roles: [security_analyst]          # who may lift an anomaly block / step-up
```

The session secret signs the session cookie and derives the CSRF tokens. Without the environment
variable a random one is generated at start (``crmgw serve --workers N`` generates one before
forking and its workers share it: gateway.server.share_console_secret): logins then end at restart
and are not shared between gateway instances. Several replicas behind one entry point MUST be given
the same secret (docker-compose.yml sets it for both replicas).
"""

from __future__ import annotations

import os
import secrets

from pydantic import Field, field_validator

from gateway.rulefile import StrictModel

MIN_SECRET = 32


class ConsoleConfig(StrictModel):
    enabled: bool = True
    roles: list[str] = Field(default_factory=lambda: ["security_analyst", "admin"], min_length=1)
    session_secret_env: str = "CRMGW_CONSOLE_SECRET"
    session_max_age: int = Field(8 * 3600, ge=60, le=7 * 86400)
    chart_days: int = Field(14, ge=3, le=90)
    # Days of audit log looked at for a user's usual hours/countries and for shadow-rule counts.
    history_days: int = Field(14, ge=1, le=90)
    # The most audit-log bytes one page reads (newest first); older records are then not shown.
    audit_scan_bytes: int = Field(64 * 1024 * 1024, ge=64 * 1024)
    page_size: int = Field(100, ge=10, le=1000)
    allowed_origins: list[str] = Field(default_factory=list)
    # Who may lift an anomaly block / step-up from the console (gateway/console/pages_blocks.py);
    # everyone with a console role sees them.
    lift_roles: list[str] = Field(default_factory=lambda: ["security_analyst"], min_length=1)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
                raise ValueError(f"origin {origin!r} must look like https://host[:port] (no path)")
        return [o.rstrip("/") for o in value]

    def secret(self) -> bytes:
        """The configured secret, or a fresh random one; a short configured secret is refused."""
        value = os.environ.get(self.session_secret_env)
        if value is None or value == "":
            return secrets.token_bytes(32)
        if len(value) < MIN_SECRET:
            raise ValueError(f"console: ${self.session_secret_env} must be at least {MIN_SECRET} characters long")
        return value.encode()
