"""``crmgw signals rebuild``: restore the behaviour counters from the audit log after a loss.

    crmgw signals rebuild --config gateway.yaml --audit-log var/audit.log
    crmgw signals rebuild --redis-url redis://h:6379/0 --rules rules --audit-log gw1/audit.log \
        --audit-log gw2/audit.log --since 2026-03-01T00:00:00+00:00

Give every instance's audit log: each instance writes its own. A file stands for itself and its
rotated backups (``audit.log.1``, ...), a folder for the ``audit*`` files in it. Safe to run while
the gateways serve and to run again (gateway/signals/rebuild.py says why).

Exit codes: 0 done, 1 Redis or the files could not be read, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from gateway.clock import utc_now

if TYPE_CHECKING:
    from gateway.alerts.cli import Subparsers
    from gateway.signals.anomalies import AnomalyRules
    from gateway.signals.config import SignalsConfig


class Target(NamedTuple):
    """What a rebuild writes to, and the rules it plans the counting with."""

    config: SignalsConfig
    redis_url: str
    rules: AnomalyRules | None


def register(subparsers: Subparsers) -> None:
    signals = subparsers.add_parser("signals", help="behaviour counters: rebuild after a loss").add_subparsers(
        dest="signals_cmd", required=True
    )
    s = signals.add_parser("rebuild", help="restore the counter windows from the audit log (after signals-data-lost)")
    where = s.add_mutually_exclusive_group()
    where.add_argument(
        "--config",
        help="gateway.yaml: its signals section, Redis URL and rules folder "
        "(default: $CRMGW_CONFIG, else ./gateway.yaml)",
    )
    where.add_argument("--redis-url", help="the counters' Redis (default signals settings; give --rules too)")
    s.add_argument(
        "--audit-log",
        action="append",
        required=True,
        metavar="FILE",
        help="an audit log (with its rotated backups) or a folder of them; repeat for every instance",
    )
    s.add_argument("--since", help="ISO time with offset (default: as far back as the counters reach, ~32 days)")
    s.add_argument("--rules", help="rules folder (default: the settings' rules_dir, or ./rules)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_signals)


def _audit_paths(values: list[str]) -> list[Path] | str:
    from detectors.replay import expand_paths
    from gateway.audit.search import audit_files

    out: list[Path] = []
    for value in values:
        path = Path(value)
        found = expand_paths([path]) if path.is_dir() else audit_files(path)
        if not found:
            return f"no audit log at {value}"
        out += [p for p in found if p.resolve() not in {q.resolve() for q in out}]
    return out


def _setup(args: argparse.Namespace) -> Target | str:
    """(signals config, Redis URL, anomaly rules) or an error message."""
    from gateway.cli import DEFAULT_RULES
    from gateway.ruleset import load_ruleset
    from gateway.signals.config import SignalsConfig

    rules_dir = Path(args.rules or ("rules" if Path("rules").is_dir() else DEFAULT_RULES))
    config, url = SignalsConfig(), args.redis_url
    if not args.redis_url:
        from gateway.configfile import config_path
        from gateway.settings import load_settings

        path = config_path(args.config, "crmgw signals rebuild")
        if path is None:
            return "(or give --redis-url and --rules)"
        settings, errors = load_settings(path)
        if settings is None:
            return "\n".join(str(e) for e in errors)
        config, url = settings.signals, settings.signals.redis_url or settings.redis_url
        rules_dir = Path(args.rules) if args.rules else settings.path(settings.rules_dir)
    if not url or config.backend == "memory":
        return "the counters live in process memory (no Redis URL, or signals.backend: memory): nothing to rebuild"
    ruleset, errors = load_ruleset(rules_dir)
    if ruleset is None:
        return "\n".join(str(e) for e in errors) + f"\nrules in {rules_dir} do not load"
    return Target(config, url, ruleset.anomalies)


def cmd_signals(args: argparse.Namespace) -> int:
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError as exc:
            print(f"--since: {exc}", file=sys.stderr)
            return 2
        if since.tzinfo is None:
            print("--since needs a UTC offset, e.g. 2026-03-01T00:00:00+00:00", file=sys.stderr)
            return 2
    target = _setup(args)
    if isinstance(target, str):
        print(target, file=sys.stderr)
        return 2
    paths = _audit_paths(args.audit_log)
    if isinstance(paths, str):
        print(paths, file=sys.stderr)
        return 1
    return asyncio.run(_rebuild(args, target, paths, since))


async def _rebuild(args: argparse.Namespace, target: Target, paths: list[Path], since: datetime | None) -> int:
    from redis.exceptions import RedisError

    from detectors.replay import read_audit_logs
    from gateway.redisconn import connect_redis
    from gateway.signals.rebuild import rebuild

    client = connect_redis(target.redis_url)
    try:
        report = await rebuild(client, target.config, target.rules, read_audit_logs(paths), now=utc_now(), since=since)
    except (RedisError, OSError) as exc:
        print(f"signals rebuild: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.aclose()
    if args.json:
        print(
            json.dumps(
                {k: v.isoformat() if isinstance(v, datetime) else v for k, v in dataclasses.asdict(report).items()}
            )
        )
    else:
        print(f"signals rebuild from {len(paths)} file(s): {report.summary()}")
    return 0 if report.marked else 1
