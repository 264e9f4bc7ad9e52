"""``crmgw users``: the users directory (the rule files) with the governance overlay on top.

    crmgw users --config gateway.yaml [--json] [--overlay-only]
    crmgw users --rules rules --redis-url redis://localhost:6379/0 [--json]

Each user: id, roles, team, the directory status (rules/users.yaml: the source of truth), and what
analysts added in Redis: ``suspended`` (by whom, since, until, why), ``blocked`` / ``step_up``
(until). The overlay only removes access; ``effective`` is ``refused`` when either the directory or
the overlay refuses the user. Exit codes: 0 listed, 1 Redis unreachable, 2 bad usage/configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from gateway.alerts.cli import Subparsers, _clean


def register(subparsers: Subparsers) -> None:
    s = subparsers.add_parser("users", help="the users directory with suspensions, blocks and step-ups in force")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--config", help="gateway.yaml (default: $CRMGW_CONFIG, else ./gateway.yaml)")
    where.add_argument("--rules", help="the rules folder (without a gateway.yaml; give --redis-url)")
    s.add_argument("--redis-url", help="Redis holding the overlay (overrides the configuration)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--overlay-only", action="store_true", help="only users with a suspension, block or step-up")
    s.set_defaults(func=cmd_users)


def cmd_users(args: argparse.Namespace) -> int:
    from gateway.ruleset import load_ruleset

    if args.rules:
        rules_dir, url = Path(args.rules), args.redis_url
    else:
        from gateway.configfile import settings_for

        settings = settings_for(args.config, "crmgw users")
        if settings is None:
            return 2
        rules_dir, url = settings.path(settings.rules_dir), args.redis_url or settings.redis_url
    ruleset, errors = load_ruleset(rules_dir)
    for e in errors:
        print(e, file=sys.stderr)
    if ruleset is None:
        return 2
    try:
        overlay = asyncio.run(_overlay(url)) if url else {}
    except (OSError, ConnectionError) as exc:
        print(f"Redis unavailable ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    rows = []
    for user in sorted(ruleset.directory.users.values(), key=lambda u: u.id):
        extra = overlay.get(user.id, {})
        if args.overlay_only and not extra:
            continue
        refused = user.status != "active" or "suspended" in extra or "block" in extra
        rows.append(
            {
                "user": user.id,
                "roles": sorted(user.roles),
                "team": user.team,
                "directory_status": user.status,
                **extra,
                "effective": "refused" if refused else "step-up" if "step_up" in extra else "as the rules say",
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        marks = []
        if "suspended" in r:
            s = r["suspended"]
            marks.append(f"SUSPENDED by {_clean(s['actor'])} until {s['until'] or 'lifted'}: {_clean(s['note'])}")
        for action in ("block", "step_up"):
            if action in r:
                marks.append(f"{action.replace('_', '-')} until {r[action]['until']}")
        line = f"{_clean(r['user']):<14} {','.join(r['roles']):<28} {_clean(r['team'] or '-'):<10} {r['directory_status']:<10}"
        print(line + ("  " + "; ".join(marks) if marks else ""))
    if not url:
        print("no Redis configured: the overlay of a running gateway is not shown", file=sys.stderr)
    return 0


async def _overlay(url: str) -> dict[str, dict[str, Any]]:
    from redis.exceptions import RedisError

    from gateway.governance.actions import iso
    from gateway.governance.overlay import SuspensionState, SuspensionStore
    from gateway.redisconn import connect_redis
    from gateway.signals.enforcement import EnforcementState, RedisEnforcement

    client = connect_redis(url)
    now = time.time()
    out: dict[str, dict[str, Any]] = {}
    try:
        for s in await SuspensionStore(client, SuspensionState()).active(now):
            d = s.to_dict()
            d["since"], d["until"] = iso(s.since), iso(s.until) if s.until else None
            out.setdefault(s.user, {})["suspended"] = d
        for m in await RedisEnforcement(client, EnforcementState(), time.time).active(now):
            out.setdefault(m.user, {})[m.action] = {"until": iso(m.until), "rule": m.rule}
    except RedisError as exc:
        raise ConnectionError(str(exc)) from exc
    finally:
        await client.aclose()
    return out
