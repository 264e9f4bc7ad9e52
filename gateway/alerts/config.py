"""The ``alerts:`` section of gateway.yaml.

```yaml
alerts:
  journal: var/alerts.jsonl          # relative to the settings file's folder
  redis_url: redis://127.0.0.1:6379/0   # optional; default: the gateway's redis_url
  webhook:
    url: https://soar.example/hooks/crmgw
    timeout: 5
    retries: 5                        # attempts after the first one, with exponential backoff + jitter
    backoff: 0.5                      # first delay in seconds; doubles each attempt, capped at max_backoff
    headers: {X-Source: crmgw}
    headers_env: {Authorization: CRMGW_WEBHOOK_AUTH}   # header -> environment variable holding its value
  syslog: {address: "127.0.0.1:514", facility: local0}
  join_days: 7                        # a detector alert joins the user's open one raised < 7 days ago
  join_types: [detector-anomaly]
```
"""

from __future__ import annotations

import os
from logging.handlers import SysLogHandler

from pydantic import Field, field_validator

from gateway.rulefile import StrictModel


class WebhookConfig(StrictModel):
    url: str
    timeout: float = Field(5.0, gt=0)
    retries: int = Field(5, ge=0, le=20)
    backoff: float = Field(0.5, ge=0)
    max_backoff: float = Field(60.0, gt=0)
    # Deliveries that failed every retry are kept (bounded) and tried again this often.
    retry_failed_interval: float = Field(60.0, gt=0)
    queue_size: int = Field(1000, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)
    headers_env: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("webhook url must start with http:// or https://")
        return value

    def resolved_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        for name, var in self.headers_env.items():
            value = os.environ.get(var)
            if not value:
                raise ValueError(f"alerts.webhook.headers_env: environment variable {var!r} is not set")
            headers[name] = value
        return headers


class SyslogConfig(StrictModel):
    address: str = "127.0.0.1:514"  # host:port (UDP) or a unix socket path such as /dev/log
    facility: str = "local0"

    @field_validator("facility")
    @classmethod
    def _facility(cls, value: str) -> str:
        if value not in SysLogHandler.facility_names:
            raise ValueError(f"unknown syslog facility {value!r}")
        return value

    def target(self) -> str | tuple[str, int]:
        if self.address.startswith("/"):
            return self.address
        host, sep, port = self.address.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError("syslog address must be host:port or an absolute socket path")
        return host.strip("[]"), int(port)


class AlertsConfig(StrictModel):
    journal: str = "var/alerts.jsonl"
    # Roles that may use the alerts API (the gateway's admin authenticators identify the caller).
    api_roles: list[str] = Field(default_factory=lambda: ["security_analyst", "admin"])
    redis_url: str | None = None
    # How often a running gateway checks Redis: a Redis that came back, or came back empty, is
    # refilled from the journal on the next check.
    redis_check_interval: float = Field(2.0, gt=0)
    # A repeat of an open alert keeps its evidence; only the latest this many are kept.
    max_occurrences: int = Field(20, ge=1, le=1000)
    # Repeats of an open alert closer together than this (same or lower level) are only counted in
    # memory and written with the next repeat or check: a bulk export over the threshold on every
    # request must not fsync the journal on every request. 0 writes every repeat.
    repeat_min_interval: float = Field(1.0, ge=0)
    # A new alert of one of these types, for a user with an OPEN alert of the same type raised less
    # than join_days ago, joins that alert (history ``recurred``) instead of adding one to the queue
    # (gateway/alerts/intake.py). 0 never joins; a closed alert is never joined.
    join_days: float = Field(7.0, ge=0, le=90)
    join_types: list[str] = Field(default_factory=lambda: ["detector-anomaly"])
    webhook: WebhookConfig | None = None
    syslog: SyslogConfig | None = None
