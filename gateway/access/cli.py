"""``crmgw access request|list|approve|reject|revoke``: access requests from a terminal.

Like ``crmgw approvals`` it opens the store itself (the journal beside the approvals journal, plus
the shared Redis): no running gateway is needed and every gateway instance sees the change (a
revocation at once, a new grant within a second). Who may do what is checked against the users
directory of the settings' ``rules_dir``; each change writes an audit line (``kind: access``,
``via: cli``).

    crmgw access request --user carol --operation customers.export --scope own \\
                         --until 2026-03-03T18:00:00+01:00 --reason "ticket SEC-1" --actor carol
    crmgw access list [--status pending|approved|rejected|revoked|expired|all] [--for erin] [--json]
    crmgw access approve ID --actor erin --note "ok"     (also: reject, revoke)

``--actor`` (default ``$USER``) names the directory user who acts: whoever may run this command with
these settings can act as anyone; keep the journal, Redis and the audit log to the operators.
Exit codes: 0 done, 1 refused or unknown request (or the store unavailable), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.alerts.cli import _clean, _login, print_record, print_records
from gateway.approvals.cli import _options, attempt, settings_and_rules, write_audit

if TYPE_CHECKING:
    from gateway.access.model import AccessRequest
    from gateway.alerts.cli import Subparsers
    from gateway.policy.compiled import CompiledGrant
    from gateway.ruleset import RuleSet
    from gateway.settings import Settings


def register(subparsers: Subparsers) -> None:
    access = subparsers.add_parser(
        "access", help="access requests: request, list, approve, reject, revoke"
    ).add_subparsers(dest="access_cmd", required=True)
    actor: dict[str, Any] = {"default": os.environ.get("USER") or _login(), "help": "who acts (default $USER)"}
    s = access.add_parser("request", help="ask for a time-boxed grant (for yourself or someone you manage)")
    _options(s)
    s.add_argument("--user", help="who gets the grant (default: the actor)")
    s.add_argument(
        "--operation",
        dest="operations",
        action="append",
        required=True,
        help="an exact operation id, e.g. customers.export (repeat for several)",
    )
    s.add_argument("--scope", default="own", help="data scope: own (default), team, department, region, branch, all")
    s.add_argument("--until", required=True, help="ISO time with an offset, e.g. 2026-03-03T18:00:00+01:00")
    s.add_argument("--reason", required=True)
    s.add_argument("--actor", **actor)
    s.set_defaults(func=cmd_access)
    s = access.add_parser("list", help="access requests, newest first")
    _options(s)
    s.add_argument("--status", default="all", help="pending, approved, rejected, revoked, expired or all (default)")
    s.add_argument("--for", dest="for_user", help="only those this directory user may decide")
    s.add_argument("--limit", type=int, default=100)
    s.set_defaults(func=cmd_access)
    for name, help_text in (
        ("approve", "approve a pending request: the grant is active until its end"),
        ("reject", "reject a pending request"),
        ("revoke", "end a pending or approved request now"),
    ):
        s = access.add_parser(name, help=help_text)
        _options(s)
        s.add_argument("id")
        s.add_argument("--note", help="why (kept with the request and in the audit log)")
        s.add_argument("--actor", **actor)
        s.set_defaults(func=cmd_access)


def cmd_access(args: argparse.Namespace) -> int:
    loaded = settings_and_rules(args.config, f"crmgw access {args.access_cmd}")
    if loaded is None:
        return 2
    if args.access_cmd != "list" and not args.actor:
        print("--actor is required (no $USER)", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, *loaded))


async def _run(args: argparse.Namespace, settings: Settings, ruleset: RuleSet) -> int:
    from gateway.access import access_record, approver_roles, open_access_store
    from gateway.access.model import may_decide, new_request

    store = await open_access_store(settings, background=False, redis_url=args.redis_url)
    directory = ruleset.directory
    now = datetime.now(UTC)

    def view(r: AccessRequest) -> dict[str, Any]:
        return r.to_view(now)

    def row(r: AccessRequest) -> str:
        return _row(r, now)

    try:
        if args.access_cmd == "list":
            found = [
                r
                for r in await store.list(limit=args.limit)
                if args.status == "all" or r.shown_status(now) in args.status.split(",")
            ]
            if args.for_user:
                found = [
                    r for r in found if r.shown_status(now) == "pending" and may_decide(r, args.for_user, directory)
                ]
            print_records(
                found,
                as_json=args.json,
                view=view,
                row=row,
                noun="access request",
                journal=store.journal.path,
                shared=store.redis_up,
            )
            return 0
        if args.access_cmd == "request":
            req = await attempt(
                lambda: store.request(
                    new_request(
                        ruleset=ruleset,
                        user=args.user or args.actor,
                        requested_by=args.actor,
                        operations=args.operations,
                        data_scope=args.scope,
                        until=args.until,
                        reason=args.reason,
                        approver_roles=approver_roles(settings),
                        now=now,
                    )
                )
            )
        elif args.access_cmd == "revoke":
            req = await attempt(lambda: store.revoke(args.id, actor=args.actor, note=args.note, directory=directory))
        else:
            req = await attempt(
                lambda: store.decide(
                    args.id, approve=args.access_cmd == "approve", actor=args.actor, note=args.note, directory=directory
                )
            )
        if req is None:
            return 1
        event = {"request": "requested", "revoke": "revoked"}.get(args.access_cmd, req.status)
        write_audit(settings, access_record(req, event=event, actor=args.actor, via="cli"))
        print_record(req, as_json=args.json, view=view, row=row)
        return 0
    finally:
        await store.close()


def _row(r: AccessRequest, now: datetime) -> str:
    by = f" by {_clean(r.decided_by or r.revoked_by)}" if (r.decided_by or r.revoked_by) else ""
    return (
        f"{r.id}  {r.created_at[:19]}  {r.shown_status(now):<9}{by:<10} {_clean(r.user):<10} "
        f"{','.join(r.operations)} scope {r.data_scope} until {r.until[:19]}  asked by {_clean(r.requested_by)}: "
        f"{_clean(r.reason)}"
    )


def load_settings_or_none(config: str) -> Settings | None:
    """The settings of ``crmgw explain --config``, or None after printing the problems."""
    from pathlib import Path

    from gateway.settings import load_settings

    settings, errors = load_settings(Path(config))
    for e in errors or ():
        print(e, file=sys.stderr)
    return settings


def grants_for_user(settings: Settings, user: str) -> tuple[CompiledGrant, ...]:
    """``crmgw explain --config``: the user's approved access requests (revoked ones are not),
    as grants; the engine says whether each is active at ``--at`` (from its approval to its end)."""
    from gateway.access import open_access_store

    async def read() -> list[CompiledGrant]:
        store = await open_access_store(settings, background=False)
        try:
            return [r.grant() for r in await store.list(status={"approved"}, limit=10000) if r.user == user]
        finally:
            await store.close()

    return tuple(asyncio.run(read()))
