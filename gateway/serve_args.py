"""The ``crmgw serve`` command line: its options, their defaults and the entry point.

Kept apart from gateway.server so that building ``crmgw``'s parser (every command does) imports
neither aiohttp nor the settings, the pipeline or the detector: the server is imported when
``serve`` actually runs.
"""

from __future__ import annotations

import argparse
import sys

# For the help text only (this module must not import the settings); the defaults that apply are
# gateway.settings.Limits' (tests/ops/test_server.py checks the two agree).
DEFAULT_DRAIN_TIMEOUT = 30.0
DEFAULT_REQUEST_TIMEOUT = 60.0
DEFAULT_MAX_CONNECTIONS = 1024


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``crmgw serve`` (cli.py calls this on its ``serve`` sub-parser)."""
    from gateway.configfile import CONFIG_HELP

    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the port through SO_REUSEPORT (default 1: serve in this process)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=None,
        help=f"seconds in-flight requests may take to finish on SIGTERM (default {DEFAULT_DRAIN_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help=f"open client connections per worker; more are answered 503 (default {DEFAULT_MAX_CONNECTIONS}, 0: no limit)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=None,
        help=f"seconds one request may take end to end, 504 after (default {DEFAULT_REQUEST_TIMEOUT:g}, 0: none)",
    )


def run_from_args(args: argparse.Namespace) -> int:
    """``crmgw serve``: load the settings (refusing on any error) and serve."""
    from pathlib import Path

    from gateway.configfile import config_path
    from gateway.server import serve
    from gateway.settings import load_settings

    path = config_path(args.config, "crmgw serve")
    if path is None:
        return 2
    settings, errors = load_settings(Path(path))
    if settings is None:
        for e in errors:
            print(e, file=sys.stderr)
        print("refusing to start: fix the settings above", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    return serve(
        settings,
        workers=args.workers,
        drain_timeout=args.drain_timeout,
        max_connections=getattr(args, "max_connections", None),
        request_timeout=getattr(args, "request_timeout", None),
    )
