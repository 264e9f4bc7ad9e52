"""``crmgw catalogue draft``: a draft operations.yaml from an OpenAPI document or an audit log.

Exit codes: 0 the draft was written (TODOs and all: a draft is meant to have them), 2 the input
could not be read or the output file exists (a draft never overwrites a catalogue unless told to).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_catalogue_draft(args: argparse.Namespace) -> int:
    from gateway.context.todos import find_todos
    from gateway.drafting.from_audit import draft_from_audit
    from gateway.drafting.from_openapi import draft_text
    from gateway.drafting.openapi import OpenAPIError, load_openapi
    from gateway.rulefile import parse_yaml

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.force:
        print(f"{out} exists: not overwriting it (--force to replace it)", file=sys.stderr)
        return 2
    try:
        if args.openapi:
            text = draft_text(load_openapi(Path(args.openapi)))
        else:
            text = draft_from_audit(Path(args.audit_log), min_count=args.min_count)
    except OpenAPIError as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
    doc, _ = parse_yaml(text, str(out or "<stdout>"))
    todos = find_todos(doc) if doc is not None else []
    where = f"written to {out}" if out else "written"
    print(f"draft {where}: {len(todos)} TODO(s) to decide before `crmgw rules check` accepts it", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    catalogue = subparsers.add_parser("catalogue", help="draft catalogue entries (operations.yaml)")
    commands = catalogue.add_subparsers(dest="catalogue_cmd", required=True)
    s = commands.add_parser("draft", help="a draft operations.yaml from an OpenAPI document or an audit log")
    source = s.add_mutually_exclusive_group(required=True)
    source.add_argument("--openapi", metavar="FILE", help="an OpenAPI 3.x document, JSON or YAML")
    source.add_argument(
        "--audit-log",
        metavar="FILE",
        help="a gateway audit log (JSON lines): the operation-unknown requests, as templates",
    )
    s.add_argument("--out", metavar="FILE", help="write the draft here (default: standard output)")
    s.add_argument("--force", action="store_true", help="replace --out if it exists")
    s.add_argument(
        "--min-count",
        type=int,
        default=1,
        metavar="N",
        help="--audit-log: leave out templates seen fewer than N times (default 1)",
    )
    s.set_defaults(func=cmd_catalogue_draft)
