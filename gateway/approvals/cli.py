"""``crmgw approvals list|approve|reject``: four-eyes requests, decided from a terminal.

Opens the approval store itself (the journal beside the alerts journal, plus the shared Redis), so
it needs no running gateway and what it decides every gateway instance sees at once. Who may decide
is checked against the users directory of the settings' ``rules_dir`` (an approver role, or the
requester's manager; never the requester). Each decision writes an audit line (``kind: approval``)
to the settings' audit log, like a decision taken in the console.

    crmgw approvals list [--config gateway.yaml] [--status pending|all|approved|...] [--for erin] [--json]
    crmgw approvals approve ID --actor erin --note "month-end clean-up, ticket OPS-12"
    crmgw approvals reject ID --actor erin --note "no ticket"

``--actor`` (default ``$USER``) names the directory user who decides: whoever may run this command
with these settings can act as anyone, like ``crmgw alerts``; keep the journal, Redis and the audit
log to the operators. Exit codes: 0 done, 1 refused or unknown approval (or the store unavailable),
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.alerts.cli import _clean, _login, print_record, print_records

if TYPE_CHECKING:
    from gateway.alerts.cli import Subparsers
    from gateway.approvals.model import Approval
    from gateway.identity.directory import Directory
    from gateway.ruleset import RuleSet
    from gateway.settings import Settings

T = TypeVar("T")


def register(subparsers: Subparsers) -> None:
    approvals = subparsers.add_parser("approvals", help="four-eyes approvals: list, approve, reject").add_subparsers(
        dest="approvals_cmd", required=True
    )
    s = approvals.add_parser("list", help="approvals, newest first (default: pending ones)")
    _options(s)
    s.add_argument(
        "--status", default="pending", help="pending (default), approved, rejected, consumed, expired or all"
    )
    s.add_argument("--for", dest="for_user", help="only those this directory user may decide")
    s.add_argument("--limit", type=int, default=100)
    s.set_defaults(func=cmd_approvals)
    for name, help_text in (
        ("approve", "approve a pending request: it then passes once"),
        ("reject", "reject a pending request: it never passes"),
    ):
        s = approvals.add_parser(name, help=help_text)
        _options(s)
        s.add_argument("id")
        s.add_argument("--note", required=True, help="why (kept with the approval and in the audit log)")
        s.add_argument("--actor", default=os.environ.get("USER") or _login(), help="who decides (default $USER)")
        s.set_defaults(func=cmd_approvals)


def _options(p: argparse.ArgumentParser) -> None:
    from gateway.configfile import CONFIG_HELP

    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--redis-url", help="Redis holding the shared approvals (overrides the settings)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def settings_and_rules(config: str | None, command: str) -> tuple[Settings, RuleSet] | None:
    """(settings, rule set) of the settings file, or None after printing every problem (exit 2).
    Shared with ``crmgw access`` (gateway.access.cli)."""
    from gateway.configfile import settings_for
    from gateway.ruleset import load_ruleset

    settings = settings_for(config, command)
    if settings is None:
        return None
    ruleset, errors = load_ruleset(settings.path(settings.rules_dir))
    if ruleset is None:
        for e in errors:
            print(e, file=sys.stderr)
        return None
    return settings, ruleset


async def attempt(change: Callable[[], Awaitable[T]]) -> T | None:
    """One change of a store from a terminal (shared with ``crmgw access``): its result, or None once
    stderr says why it was refused (an ApprovalError / AccessError) or not done (the store unavailable)."""
    from gateway.approvals.model import Refusal
    from gateway.approvals.store import StoreUnavailable

    try:
        return await change()
    except Refusal as exc:
        print(f"refused ({exc.reason}): {exc.message}", file=sys.stderr)
    except StoreUnavailable as exc:
        print(f"not done: {exc}", file=sys.stderr)
    return None


def cmd_approvals(args: argparse.Namespace) -> int:
    loaded = settings_and_rules(args.config, f"crmgw approvals {args.approvals_cmd}")
    if loaded is None:
        return 2
    settings, ruleset = loaded
    if args.approvals_cmd != "list" and not args.actor:
        print("--actor is required (no $USER)", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, settings, ruleset.directory))


async def _run(args: argparse.Namespace, settings: Settings, directory: Directory) -> int:
    from gateway.approvals import open_approval_store
    from gateway.approvals.model import Approval, may_approve

    store = await open_approval_store(settings, background=False, redis_url=args.redis_url)
    try:
        if store.mirror is not None and not store.redis_up:
            print(
                f"warning: Redis unavailable ({store.last_redis_error}); listing from the journal only; "
                "decisions are refused",
                file=sys.stderr,
            )
        if args.approvals_cmd == "list":
            now = datetime.now(UTC)
            status = None if args.status == "all" else set(args.status.split(","))
            found = await store.list(status=status, limit=args.limit)
            if args.for_user:
                found = [a for a in found if may_approve(a, args.for_user, directory) and not a.expired(now)]
            print_records(
                found,
                as_json=args.json,
                view=Approval.to_dict,
                row=lambda a: _row(a, now),
                noun="approval",
                journal=store.journal.path,
                shared=store.redis_up,
            )
            return 0
        approval = await attempt(
            lambda: store.decide(
                args.id, approve=args.approvals_cmd == "approve", actor=args.actor, note=args.note, directory=directory
            )
        )
        if approval is None:
            return 1
        _audit(settings, approval, args.actor)
        print_record(approval, as_json=args.json, view=Approval.to_dict, row=lambda a: _row(a, datetime.now(UTC)))
        return 0
    finally:
        await store.close()


def _audit(settings: Settings, approval: Approval, actor: str) -> None:
    from gateway.approvals.gate import decision_record

    write_audit(settings, decision_record(approval, actor=actor, via="cli"))


def write_audit(settings: Settings, record: dict[str, Any]) -> None:
    """One audit line to the settings' audit log (shared with ``crmgw access``)."""
    from gateway.audit.log import AuditLog

    log = AuditLog(settings.data_path(settings.audit.path), settings.audit.max_bytes, settings.audit.backups)
    try:
        if not log.write(record):
            print("warning: the audit line could not be written (kept on stderr)", file=sys.stderr)
    finally:
        log.close()


def _row(a: Approval, now: datetime) -> str:
    status = "expired" if a.status in ("pending", "approved") and a.expired(now) else a.status
    query = "?" + "&".join(f"{k}={v}" for k, v in sorted(a.query.items())) if a.query else ""
    by = f" by {_clean(a.decided_by)}" if a.decided_by else ""
    return (
        f"{a.id}  {a.created_at[:19]}  {status:<9}{by:<10} {_clean(a.requester):<10} "
        f"{a.method} {_clean(a.path + query)}  rule {_clean(a.rule)}  until {a.expires_at[:19]}  "
        f"approvers: {_clean(a.approvers_text())}"
    )
