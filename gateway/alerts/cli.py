"""``crmgw alerts list|show|ack|resolve|false-positive|verdict|assign|note|verdicts``.

The CLI opens the alert store itself (the journal, plus Redis when configured), so it works while the
gateway is down, and what it changes is what the API shows (and the other way round). With Redis
down it works from the journal alone; the change reaches Redis at the next replay (the gateway's
periodic check, or this CLI's next run).

    crmgw alerts list --config gateway.yaml --status open,acknowledged --level high
    crmgw alerts show ID                      # settings: --config, else $CRMGW_CONFIG, else ./gateway.yaml
    crmgw alerts false-positive 01J... --journal var/alerts.jsonl --redis-url redis://... --note "month end"
    crmgw alerts verdict 01J... 01K... --verdict benign_true_positive --determination authorized_activity
    crmgw alerts verdicts --config gateway.yaml --out var/verdicts.jsonl

``verdict`` takes one alert id or several (bulk: each alert is changed and journalled on its own,
like the console's bulk triage; one refused does not stop the others). ``resolve`` and
``false-positive`` take ``--verdict`` / ``--determination`` too.

Exit codes: 0 done, 1 unknown alert or refused transition (for a bulk verdict: any of them), 2 bad
usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.alerts.config import AlertsConfig
from gateway.alerts.model import DETERMINATIONS, VERDICTS, Alert, AlertNotFound, InvalidTransition

if TYPE_CHECKING:
    from gateway.alerts.store import AlertStore

# `crmgw`'s subcommands, as every command module's ``register`` receives them (argparse's class is
# generic for type checkers only)
if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction

T = TypeVar("T")
ACTIONS = {"ack": "acknowledged", "resolve": "resolved", "false-positive": "false_positive"}


def _store_options(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--config", help="gateway.yaml: its alerts: section and redis_url (default: $CRMGW_CONFIG, else ./gateway.yaml)"
    )
    where.add_argument("--journal", help="the alerts journal file (without a gateway.yaml)")
    p.add_argument("--redis-url", help="Redis holding the shared alerts (overrides the configuration)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def register(subparsers: Subparsers) -> None:
    alerts = subparsers.add_parser("alerts", help="list and triage alerts").add_subparsers(
        dest="alerts_cmd", required=True
    )
    s = alerts.add_parser("list", help="alerts, newest first")
    _store_options(s)
    s.add_argument("--status", help="comma-separated: open,acknowledged,resolved,false_positive")
    s.add_argument("--level")
    s.add_argument("--user")
    s.add_argument("--type")
    s.add_argument("--since", help="ISO time with offset")
    s.add_argument("--limit", type=int, default=50)
    s.set_defaults(func=cmd_alerts)
    s = alerts.add_parser("show", help="one alert with its evidence, notes and history")
    _store_options(s)
    s.add_argument("id")
    s.set_defaults(func=cmd_alerts)
    for name, help_text in (
        ("ack", "acknowledge (and take) an alert"),
        ("resolve", "resolve: the alert was real"),
        ("false-positive", "mark benign: the next training run learns from it"),
        ("assign", "assign to an analyst (--to '' unassigns)"),
        ("note", "add a note"),
    ):
        s = alerts.add_parser(name, help=help_text)
        _store_options(s)
        s.add_argument("id")
        s.add_argument("--note", required=name == "note")
        s.add_argument("--actor", default=os.environ.get("USER") or _login(), help="who acts (default $USER)")
        if name == "assign":
            s.add_argument("--to", required=True, dest="assignee")
        if name in ("resolve", "false-positive"):
            _verdict_options(s, required=False)
        s.set_defaults(func=cmd_alerts)
    s = alerts.add_parser("verdict", help="close alerts with a verdict and determination (or correct it)")
    _store_options(s)
    s.add_argument("ids", nargs="+", metavar="id", help="one alert id or several")
    _verdict_options(s, required=True)
    s.add_argument("--note")
    s.add_argument("--actor", default=os.environ.get("USER") or _login(), help="who acts (default $USER)")
    s.set_defaults(func=cmd_alerts)
    s = alerts.add_parser("verdicts", help="write analyst verdicts (JSON lines) for the next training run")
    _store_options(s)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_alerts)


def _verdict_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--verdict", required=required, choices=VERDICTS)
    p.add_argument("--determination", choices=DETERMINATIONS, help="why (needs --verdict)")


def _login() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None


def _config(args: argparse.Namespace) -> tuple[AlertsConfig, str | None, Path] | None:
    if not args.journal:
        from gateway.configfile import settings_for

        settings = settings_for(args.config, f"crmgw alerts {args.alerts_cmd}")
        if settings is None:
            return None
        config = settings.alerts
        return (
            config,
            args.redis_url or config.redis_url or settings.redis_url,
            settings.data_root(),
        )  # the journal is under data_dir
    return AlertsConfig(journal=str(Path(args.journal).resolve())), args.redis_url, Path.cwd()


def cmd_alerts(args: argparse.Namespace) -> int:
    found = _config(args)
    if found is None:
        return 2
    config, redis_url, base_dir = found
    if config.redis_url != redis_url:
        config = config.model_copy(update={"redis_url": redis_url})
    return asyncio.run(_run(args, config, base_dir))


async def _run(args: argparse.Namespace, config: AlertsConfig, base_dir: Path) -> int:
    from gateway.alerts import open_alert_store

    store = await open_alert_store(config, redis_url=None, base_dir=base_dir, background=False, with_sinks=False)
    try:
        if store.mirror is not None and not store.redis_up:
            print(
                f"warning: Redis unavailable ({store.last_redis_error}); working from the journal only", file=sys.stderr
            )
        return await _dispatch(args, store)
    finally:
        await store.close()


async def _dispatch(args: argparse.Namespace, store: AlertStore) -> int:
    cmd = args.alerts_cmd
    if cmd == "list":
        status = set(args.status.split(",")) if args.status else None
        alerts = await store.list(
            status=status, level=args.level, user=args.user, type=args.type, since=args.since, limit=args.limit
        )
        print_records(
            alerts,
            as_json=args.json,
            view=Alert.to_dict,
            row=_row,
            noun="alert",
            journal=store.journal.path,
            shared=store.mirror is not None and store.redis_up,
        )
        return 0
    if cmd == "verdicts":
        from gateway.alerts.verdicts import write_verdicts

        rows = await store.export_verdicts()
        n = write_verdicts(store.journal.path, Path(args.out), rows)
        print(f"{n} verdict(s) written to {args.out}")
        return 0
    if cmd == "show":
        alert = await store.get(args.id)
        if alert is None:
            print(f"no alert {args.id}", file=sys.stderr)
            return 1
        print(json.dumps(alert.to_dict(), indent=2) if args.json else _details(alert))
        return 0
    if not args.actor:
        print("--actor is required (no $USER)", file=sys.stderr)
        return 2
    if getattr(args, "determination", None) and not args.verdict:
        print("--determination needs --verdict", file=sys.stderr)
        return 2
    if cmd == "verdict":
        return await _verdicts(args, store)
    try:
        alert = await store.transition(
            args.id,
            actor=args.actor,
            status=ACTIONS.get(cmd),
            assignee=getattr(args, "assignee", None),
            note=args.note,
            verdict=getattr(args, "verdict", None),
            determination=getattr(args, "determination", None),
        )
    except AlertNotFound:
        print(f"no alert {args.id}", file=sys.stderr)
        return 1
    except (InvalidTransition, ValueError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print_record(alert, as_json=args.json, view=Alert.to_dict, row=_row)
    return 0


async def _verdicts(args: argparse.Namespace, store: AlertStore) -> int:
    """``crmgw alerts verdict ID [ID ...]``: the console's bulk triage (gateway/alerts/triage.py)."""
    from gateway.alerts.triage import bulk_triage

    try:
        result = await bulk_triage(
            store,
            args.ids,
            actor=args.actor,
            action="resolve",
            verdict=args.verdict,
            determination=args.determination,
            note=args.note,
        )
    except ValueError as exc:  # a request no alert could take (too many ids)
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    changed = [a for a in [await store.get(i) for i in result.done] if a is not None]
    if args.json:
        print(json.dumps({"done": [a.to_dict() for a in changed], "refused": result.refused}, indent=2))
    else:
        for a in changed:
            print(_row(a))
    for alert_id, why in result.refused.items():
        print(f"refused {_clean(alert_id)}: {_clean(why)}", file=sys.stderr)
    return 1 if result.refused else 0


# --- shared with the other store CLIs (crmgw approvals, access, blocks) -------------------------------


def print_records(
    records: Sequence[T],
    *,
    as_json: bool,
    view: Callable[[T], dict[str, Any]],
    row: Callable[[T], str],
    noun: str,
    journal: Path,
    shared: bool,
) -> None:
    """A listing: JSON (``view`` of each), or one ``row`` a record and the count on stderr."""
    if as_json:
        print(json.dumps([view(r) for r in records], indent=2))
        return
    for r in records:
        print(row(r))
    print(f"{len(records)} {noun}(s) in {journal}" + (" and Redis" if shared else ""), file=sys.stderr)


def print_record(record: T, *, as_json: bool, view: Callable[[T], dict[str, Any]], row: Callable[[T], str]) -> None:
    """One record after a change: its JSON ``view`` or its ``row``."""
    print(json.dumps(view(record), indent=2) if as_json else row(record))


def _clean(text: str | None) -> str:
    """Alert text is partly attacker-controlled (paths, user agents): no terminal escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text or ""))


def _row(a: Alert) -> str:
    summary = _clean(a.summary if len(a.summary) <= 70 else a.summary[:69] + "…")
    return (
        f"{a.id}  {a.time[:19]}  {a.level:<8} {a.status:<14} {_clean(a.user):<12} {_clean(a.type):<20} "
        f"x{a.count:<4} {summary}"
    )


def _details(a: Alert) -> str:
    lines = [
        f"{a.id}  [{a.level}] {a.status}  score {a.score:.3g}  x{a.count}",
        f"  {_clean(a.summary)}",
        f"  user {_clean(a.user)}  type {_clean(a.type)}  rule {_clean(a.rule)}  window {_clean(a.window)}"
        f"  source {a.source}",
        f"  raised {a.time}  last seen {a.last_seen}  assignee {_clean(a.assignee) or '-'}",
        *([f"  verdict {a.verdict}" + (f" / {a.determination}" if a.determination else "")] if a.verdict else []),
        *([f"  recurred {a.recurrences}x: " + ", ".join(_clean(w) for w in a.windows)] if a.recurrences else []),
        "  evidence: " + json.dumps(a.evidence, sort_keys=True),
    ]
    lines += [f"  note {n.time} {_clean(n.actor)}: {_clean(n.text)}" for n in a.notes]
    lines += [
        f"  {h.time} {_clean(h.actor)} {h.action}"
        + (f" {_clean(h.from_)} -> {_clean(h.to)}" if h.from_ or h.to else "")
        for h in a.history
    ]
    return "\n".join(lines)
