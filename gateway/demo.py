"""``crmgw demo``: the demo CRM and the gateway in one process, with the example rules.

Embedded defaults, development keys only: a newcomer sees an allow, a deny with its reason, a
masked field and a scoped list within a minute by pasting the printed commands.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.identity.devkeys import DEV_IDENTITY_CONFIG, mint_token
from gateway.settings import Audit, Listen, Settings, Upstream, UpstreamCredential

DEMO_CRM_TOKEN = "demo-crm-service-token"


def demo_settings(*, port: int, crm_port: int, rules: Path, audit_path: Path) -> Settings:
    return Settings(
        listen=Listen(host="127.0.0.1", port=port),
        upstream=Upstream(
            url=f"http://127.0.0.1:{crm_port}",
            credential=UpstreamCredential(value=f"Bearer {DEMO_CRM_TOKEN}"),
        ),
        rules_dir=str(rules.resolve()),
        # The demo trusts the local machine as an SSO proxy so X-Forwarded-For can play other places.
        trusted_proxies=["127.0.0.1/32", "::1/128"],
        audit=Audit(path=str(audit_path.resolve())),
        identity=DEV_IDENTITY_CONFIG,
        base_dir=str(Path.cwd()),
    )


def console_url(port: int) -> str:
    """The analysts' console of the demo gateway (default admin prefix)."""
    return f"http://127.0.0.1:{port}/_gw/console/"


def instructions(port: int, crm_port: int, audit_path: Path) -> str:
    base = f"http://127.0.0.1:{port}"
    users = {"ALICE": "alice", "CAROL": "carol", "DAVE": "dave", "FRANK": "frank", "IVAN": "ivan"}
    exports = "\n".join(f"export {var}={mint_token(user, ttl_seconds=8 * 3600)}" for var, user in users.items())
    exports += f"\nexport GRACE={mint_token('grace', ttl_seconds=8 * 3600, mfa=True)}"
    exports += f"\nexport HEIDI={mint_token('heidi', ttl_seconds=8 * 3600)}"
    cli = (shutil.which("crmgw") and "crmgw") or os.path.relpath(Path(sys.executable).parent / "crmgw")
    paris = datetime.now(ZoneInfo("Europe/Paris"))
    office = paris.weekday() < 5 and 8 <= paris.hour < 18
    hours = (
        "It is office hours in Paris: reps may read customers."
        if office
        else f"It is {paris:%a %H:%M} in Paris, outside office hours: alice's reads show the time-window deny."
    )
    return f"""
CRM Access Gateway demo
  gateway  {base}     (in front of the demo CRM at http://127.0.0.1:{crm_port})
  audit    {audit_path}   (one JSON line per decision)
  console  {console_url(port)}   (security analysts: paste $HEIDI at the login page)
  {hours}

# Development tokens, valid 8 hours (alice, carol: sales reps; dave: sales manager, team east;
# frank: support agent; grace: admin, logged in with MFA; ivan: off-boarded; heidi: security
# analyst, for the console). Paste these first:
{exports}

# A sales manager lists customers: only records of team east come back (scope is applied per page)
curl -s '{base}/api/customers?page_size=20' -H "Authorization: Bearer $DAVE"

# A sales rep lists customers: only her own
curl -s '{base}/api/customers?page_size=20' -H "Authorization: Bearer $ALICE"

# A support agent reads a customer: quote_price and complaints removed, phone redacted
curl -s {base}/api/customers/1 -H "Authorization: Bearer $FRANK"

# A rep reads a customer of another rep: the same 404 as a customer that does not exist
curl -s {base}/api/customers/1 -H "Authorization: Bearer $CAROL"

# A rep gives her customer to another rep: refused before the CRM sees it (write-out-of-scope)
curl -s -X POST {base}/api/customers -H "Authorization: Bearer $CAROL" -H 'Content-Type: application/json' \
     -d '{{"name": "Gift", "owner_id": "bob"}}'

# A rep tries an export: denied (exports belong to admins with MFA, the reporting service, grants)
curl -s {base}/api/customers/export.csv -H "Authorization: Bearer $CAROL"

# An admin with MFA exports CSV
curl -s {base}/api/customers/export.csv -H "Authorization: Bearer $GRACE" | head -3

# An off-boarded user with a still-valid token: refused everywhere
curl -s {base}/api/customers -H "Authorization: Bearer $IVAN"

# The manager again, from an address in a denied country (the demo trusts localhost as a proxy)
curl -s {base}/api/customers -H 'X-Forwarded-For: 175.45.176.1' -H "Authorization: Bearer $DAVE"

# A path trick: refused before any rule runs
curl -s --path-as-is '{base}/api/customers/%2e%2e/admin/users' -H "Authorization: Bearer $DAVE"

# Why? Ask the rules; check and test them
{cli} explain --user alice --method GET --path /api/customers/1 --at 2026-03-02T18:30:00+01:00
{cli} rules check && {cli} rules test
curl -s {base}/_gw/health

# Next: the same gateway in front of your CRM (README.md, "From the demo to your CRM")
{cli} init mygateway --crm-url https://crm.example.internal
(Tokens for other users: {cli} token USER [--mfa]. Stop the demo with Ctrl-C.)
"""


REALISTIC_RULES = Path(__file__).resolve().parent.parent / "examples" / "realistic"


def escalation_candidate(crm_app: web.Application) -> str:
    """A lead assigned to carol alone that someone else created: once the CRM re-assigns it, it is no
    longer hers in any way (her own leads are those she created or is assigned to)."""
    from democrm.realistic import PROFILES, REALISTIC_STORE

    carol = PROFILES["carol"]
    lead_id: str = next(
        lead["id"]
        for lead in crm_app[REALISTIC_STORE].all("leads")
        if [p["id"] for p in lead["assigned_to"]] == [carol] and lead["created_by"] != carol
    )
    return lead_id


def realistic_instructions(port: int, crm_port: int, audit_path: Path, lead: str) -> str:
    from democrm.realistic import PROFILES

    base = f"http://127.0.0.1:{port}"
    users = {"CAROL": "carol", "DAVE": "dave", "FRANK": "frank", "HEIDI": "heidi"}
    exports = "\n".join(f"export {var}={mint_token(user, ttl_seconds=8 * 3600)}" for var, user in users.items())
    return f"""
CRM Access Gateway demo, realistic profile (UUIDs, trailing slashes, counts and side lists, ...)
  gateway  {base}     (in front of the realistic demo CRM at http://127.0.0.1:{crm_port})
  rules    {REALISTIC_RULES}
  audit    {audit_path}
  console  {console_url(port)}   (security analysts: paste $HEIDI at the login page)

# carol: sales rep (own leads); dave: sales manager (team east); frank: support (all, masked);
# heidi: security analyst, for the console
{exports}

# The CRM answers a list with every lead twice, a CRM-wide count and totals, every user's e-mail and
# the referenced accounts. A rep gets her leads, a count and a total over them, her accounts, no users:
curl -s '{base}/api/v2/leads/?limit=5' -H "Authorization: Bearer $CAROL"

# A support agent: every lead, amounts and prices removed, Phone and mobilePhone redacted
curl -s '{base}/api/v2/leads/?limit=2' -H "Authorization: Bearer $FRANK"

# A rep assigns a lead to another rep (bob's CRM profile id): refused before the CRM sees it
curl -s -X POST {base}/api/v2/leads/ -H "Authorization: Bearer $CAROL" \\
     -d 'title=Gift&assigned_to={PROFILES["bob"]}'

# A lead titled "escalate" is re-assigned by the CRM itself to another team's manager: carol's edit is
# committed, the escalated record is out of her scope; the answer carries no record, the audit line says so, and a
# high alert is raised for the analysts
curl -s -X PATCH {base}/api/v2/leads/{lead}/ -H "Authorization: Bearer $CAROL" \\
     -H 'Content-Type: application/json' -d '{{"title": "Please escalate"}}'

# Query parameters the catalogue does not declare never reach the CRM for a restricted caller
curl -s '{base}/api/v2/leads/?include=users' -H "Authorization: Bearer $DAVE"

# The CSV export (human headers such as "Assigned to"), scoped to dave's team
curl -s {base}/api/v2/leads/export/ -H "Authorization: Bearer $DAVE" | head -3
(Stop the demo with Ctrl-C.)
"""


def run_demo(*, port: int, crm_port: int, gzip: bool, rules: Path | None, profile: str = "classic") -> int:
    from democrm.app import create_app as create_crm
    from gateway.app import create_app
    from gateway.rulestore import RuleStore
    from gateway.server import install_uvloop

    audit_path = Path("var/demo-audit.log")
    if rules is None:
        rules = REALISTIC_RULES if profile == "realistic" else Path("rules")
    settings = demo_settings(port=port, crm_port=crm_port, rules=rules, audit_path=audit_path)
    store, errors = RuleStore.open(rules)
    if store is None:
        for e in errors:
            print(e)
        return 2
    install_uvloop()

    async def main() -> None:
        crm = web.AppRunner(create_crm(gzip=gzip, service_token=DEMO_CRM_TOKEN, profile=profile), access_log=None)
        await crm.setup()
        await web.TCPSite(crm, "127.0.0.1", crm_port).start()
        gw = web.AppRunner(create_app(settings, store), access_log=None)
        await gw.setup()
        await web.TCPSite(gw, "127.0.0.1", port).start()
        audit_file = audit_path.resolve()  # noqa: ASYNC240 (once, at start-up)
        if profile == "realistic":
            text = realistic_instructions(port, crm_port, audit_file, escalation_candidate(crm.app))
        else:
            text = instructions(port, crm_port, audit_file)
        print(text, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await gw.cleanup()
        await crm.cleanup()

    asyncio.run(main())
    return 0
