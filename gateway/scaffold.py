"""``crmgw init DIR --crm-url URL``: a starting gateway.yaml and rules/ for your own CRM.

The rules are the demo's (the admin manual's worked example: a catalogue, users, policies, policy
tests, anomaly thresholds), copied so that ``crmgw rules check`` and ``crmgw rules test`` pass from
the first minute. Their catalogue describes the demo CRM's API: on your CRM every request it does not
describe is denied as ``operation-unknown`` (fail closed) until you replace ``rules/operations.yaml``
(docs/ONBOARDING.md: ``crmgw catalogue draft``). The settings name every secret by its environment
variable, so the file can be committed as it is. Nothing is overwritten.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

EXAMPLE_RULES = Path(__file__).resolve().parent.parent / "rules"

GATEWAY_YAML = """\
# gateway.yaml written by `crmgw init`. Every key: README.md "Settings (gateway.yaml)".
# Relative paths are resolved against this file's folder. Secrets are never written here: each is
# read from the environment variable its *_env key names (README.md, "Environment variables").
#
#   export CRMGW_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
#   export CRMGW_MASK_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
#   export CRMGW_CONSOLE_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
#   crmgw rules check rules && crmgw rules test rules
#   crmgw serve                                   # finds ./gateway.yaml (or --config / $CRMGW_CONFIG)
#   crmgw token alice --config gateway.yaml       # a token this gateway accepts, for a first request
listen: {{host: 127.0.0.1, port: {port}}}
upstream:
  url: {crm_url}
  # The credential the gateway sends to the CRM for callers without their own CRM login:
  # credential: {{header: Authorization, value_env: CRM_SERVICE_TOKEN}}
  identity_headers: {{user: X-CRM-User, roles: X-CRM-Roles}}
rules_dir: rules
reload_interval: 1.0
# redis_url: redis://127.0.0.1:6379/0     # shared counters and alerts (several instances, restarts)
trusted_proxies: []                       # the proxies whose client-address header is believed
audit: {{path: var/audit.log, on_failure: deny}}
alerts: {{journal: var/alerts.jsonl}}
mask_key_env: CRMGW_MASK_KEY               # key of `hash` masks: the same on every instance
console: {{session_secret_env: CRMGW_CONSOLE_SECRET}}
identity:
  # Tokens from your identity provider: HS256 with a shared secret here; public keys, JWKS or OIDC
  # discovery for RS256/ES256 (README.md, "Settings (gateway.yaml)").
  jwt:
    algorithms: [HS256]
    secret_env: CRMGW_JWT_SECRET
    issuer: crmgw
    audience: crm
  api_key: {{header: X-API-Key}}
"""


def init(directory: Path, crm_url: str, *, port: int = 8080) -> list[Path]:
    """Write DIR/gateway.yaml and DIR/rules/; returns what was written. Raises FileExistsError."""
    if not crm_url.startswith(("http://", "https://")):
        raise ValueError(f"--crm-url must start with http:// or https://: {crm_url!r}")
    config, rules = directory / "gateway.yaml", directory / "rules"
    for existing in (config, rules):
        if existing.exists():
            raise FileExistsError(f"{existing} exists: nothing written (crmgw init never overwrites)")
    if not (EXAMPLE_RULES / "operations.yaml").is_file():
        raise FileNotFoundError(f"the example rules are not installed with this copy ({EXAMPLE_RULES})")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(EXAMPLE_RULES, rules, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    config.write_text(GATEWAY_YAML.format(crm_url=crm_url.rstrip("/"), port=port), "utf-8")
    return [config, rules]


def cmd_init(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    try:
        written = init(directory, args.crm_url, port=args.port)
    except (ValueError, OSError) as exc:
        print(f"crmgw init: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}{'/' if path.is_dir() else ''}")
    print(f"""
Next (README.md, "From the demo to your CRM"):
  cd {directory}
  export CRMGW_JWT_SECRET=...  CRMGW_MASK_KEY=...  CRMGW_CONSOLE_SECRET=...   # 32+ characters each
  crmgw rules check rules && crmgw rules test rules
  crmgw serve
The rules' catalogue (rules/operations.yaml) describes the demo CRM: replace it with your CRM's
(docs/ONBOARDING.md, `crmgw catalogue draft`); until then your CRM's requests are denied.""")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = subparsers.add_parser("init", help="write a starting gateway.yaml and rules/ for your CRM")
    s.add_argument("dir", help="the folder to write into (created if missing)")
    s.add_argument("--crm-url", required=True, help="your CRM's base URL, e.g. https://crm.internal:8443")
    s.add_argument("--port", type=int, default=8080, help="the port the gateway listens on (default 8080)")
    s.set_defaults(func=cmd_init)
