"""``crmgw blocks list|lift``: the anomaly blocks and step-ups in force, and lifting one with a reason.

Works on Redis directly (the state every gateway instance shares, gateway/signals/enforcement.py),
so it needs no running gateway; a lift reaches every instance at once (pub/sub) and is recorded in
the history of the alert that caused it (the alerts journal, plus Redis), like ``crmgw alerts``.
Same options as ``crmgw alerts`` (``--config`` or its default discovery, or ``--journal``; ``--redis-url``).

    crmgw blocks list --config gateway.yaml [--user grace] [--json]
    crmgw blocks lift grace --config gateway.yaml --note "month-end clean-up, confirmed by phone"
    crmgw blocks lift grace --action step_up --journal var/alerts.jsonl --redis-url redis://... --note "..."

Exit codes: 0 done, 1 nothing in force to lift (or Redis unreachable), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.alerts.cli import Subparsers, _clean, _login, _store_options

if TYPE_CHECKING:
    from gateway.alerts.config import AlertsConfig
    from gateway.alerts.store import AlertStore

# alerts config, the alerts' Redis URL, the signals' Redis URL, the folder the journal is under
Found = tuple["AlertsConfig", str | None, str | None, Path]


def register(subparsers: Subparsers) -> None:
    blocks = subparsers.add_parser("blocks", help="anomaly blocks and step-ups in force: list, lift").add_subparsers(
        dest="blocks_cmd", required=True
    )
    s = blocks.add_parser("list", help="blocks and step-ups in force (every instance), oldest first")
    _store_options(s)
    s.add_argument("--user")
    s.set_defaults(func=cmd_blocks)
    s = blocks.add_parser("lift", help="lift a user's block / step-up on every instance, recorded with a note")
    _store_options(s)
    s.add_argument("user")
    s.add_argument("--action", choices=("block", "step_up"), help="only this measure (default: all of the user's)")
    s.add_argument("--note", required=True, help="why it is lifted (kept in the alert's history)")
    s.add_argument("--actor", default=os.environ.get("USER") or _login(), help="who acts (default $USER)")
    s.set_defaults(func=cmd_blocks)


def _config(args: argparse.Namespace) -> Found | None:
    """(alerts config, alerts Redis URL, signals Redis URL, base dir) or None after printing why."""
    from gateway.alerts.config import AlertsConfig

    if not args.journal:  # settings found the way ``crmgw alerts`` finds them
        from gateway.configfile import settings_for

        settings = settings_for(args.config, f"crmgw blocks {args.blocks_cmd}")
        if settings is None:
            return None
        alerts = settings.alerts
        alerts_url = args.redis_url or alerts.redis_url or settings.redis_url
        signals_url = args.redis_url or settings.signals.redis_url or settings.redis_url
        return alerts, alerts_url, signals_url, settings.data_root()  # the journal is under data_dir
    alerts = AlertsConfig(journal=str(Path(args.journal).resolve()))
    return alerts, args.redis_url, args.redis_url, Path.cwd()


def cmd_blocks(args: argparse.Namespace) -> int:
    found = _config(args)
    if found is None:
        return 2
    alerts, alerts_url, signals_url, base_dir = found
    if not signals_url:
        print(
            "blocks are shared through Redis: give --redis-url or a gateway.yaml with redis_url "
            "(with the memory backend a block lives in one gateway process: use its console)",
            file=sys.stderr,
        )
        return 2
    if args.blocks_cmd == "lift" and not args.actor:
        print("--actor is required (no $USER)", file=sys.stderr)
        return 2
    if alerts.redis_url != alerts_url:
        alerts = alerts.model_copy(update={"redis_url": alerts_url})
    return asyncio.run(_run(args, alerts, signals_url, base_dir))


async def _run(args: argparse.Namespace, alerts_config: AlertsConfig, signals_url: str, base_dir: Path) -> int:
    from redis.exceptions import RedisError

    from gateway.redisconn import connect_redis
    from gateway.signals import blocks
    from gateway.signals.enforcement import EnforcementState, RedisEnforcement

    client = connect_redis(signals_url)
    enforcement = RedisEnforcement(client, EnforcementState(), time.time)
    store: AlertStore | None = None
    try:
        if args.blocks_cmd == "list":
            measures = await blocks.active(enforcement, time.time(), user=args.user)
            if args.json:
                print(json.dumps([blocks.measure_dict(m) for m in measures], indent=2))
            else:
                for m in measures:
                    d = blocks.measure_dict(m)
                    print(
                        f"{_clean(m.user):<12} {m.action:<8} since {d['since'] or '-':<20} until {d['until']:<20} "
                        f"rule {_clean(m.rule):<20} alert {m.alert or '-'}"
                    )
                print(f"{len(measures)} block(s)/step-up(s) in force", file=sys.stderr)
            return 0
        from gateway.alerts import open_alert_store

        store = await open_alert_store(
            alerts_config, redis_url=None, base_dir=base_dir, background=False, with_sinks=False
        )
        try:
            lifted = await blocks.lift(
                enforcement,
                store,
                user=args.user,
                action=args.action,
                actor=args.actor,
                note=args.note,
                now=time.time(),
            )
        except ValueError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 2
        if not lifted:
            print(f"no {args.action or 'block or step-up'} in force for {_clean(args.user)}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps([x.to_dict() for x in lifted], indent=2))
        for x in lifted:
            if not args.json:
                where = f"recorded in alert {x.recorded_in}" if x.recorded_in else f"not recorded: {x.problem}"
                print(f"lifted {x.measure.action} of {_clean(x.measure.user)} (rule {_clean(x.measure.rule)}); {where}")
            elif x.problem:
                print(f"warning: {x.problem}", file=sys.stderr)
        return 0
    except (RedisError, OSError) as exc:
        print(f"Redis unavailable ({type(exc).__name__}: {exc}); nothing lifted", file=sys.stderr)
        return 1
    finally:
        if store is not None:
            await store.close()
        await client.aclose()
