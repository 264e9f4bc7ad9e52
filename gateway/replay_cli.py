"""``crmgw rules replay``: the command line of gateway.replay (kept apart so building crmgw's parser
imports nothing of the rules engine).

    crmgw rules replay --audit-log var/audit.log --rules ../rules-draft [--current rules] [--json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = 3

REPLAY_HELP = """\
Re-decide the requests of an audit log with a draft rules folder and print what would change:
requests whose effect (allow <-> deny), data scope, masks or deciding rule differ between the
current rules (--current) and the draft (--rules), grouped by change, rule, user and operation,
with counts and examples; and what the current shadow rules would have flipped.

The baseline is the current rules' re-decision, not the recorded decision (older rules may have
made it). A write's body is not in the audit log: body-dependent refusals are not replayed.

Exit codes: 0 nothing changes, 1 something changes, 2 bad usage or rules that do not load.
"""


def register(rules_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``crmgw rules replay`` (the parser is cheap: nothing is imported until it runs)."""
    s = rules_subparsers.add_parser(
        "replay",
        help="re-decide an audit log with a draft rules folder; exit 1 on change",
        description=REPLAY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument(
        "--audit-log",
        action="append",
        required=True,
        metavar="FILE",
        help="an audit log, with its rotated backups (FILE.1, ...); repeat for every instance",
    )
    s.add_argument("--rules", required=True, metavar="DRAFT_DIR", help="the draft rules folder")
    s.add_argument("--current", metavar="DIR", help="the rules in force (default: ./rules)")
    s.add_argument("--examples", type=int, default=EXAMPLES, help=f"examples per group (default {EXAMPLES})")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    import json
    import sys

    from gateway.audit.search import audit_files
    from gateway.cli import _rules_dir
    from gateway.replay import Replayer, read_lines, render
    from gateway.ruleset import load_ruleset

    loaded = []
    for label, value in (("current", args.current), ("draft", args.rules)):
        root = _rules_dir(value)
        ruleset, errors = load_ruleset(root)
        for e in errors:
            print(e, file=sys.stderr)
        if ruleset is None:
            print(f"crmgw rules replay: the {label} rules in {root} do not load", file=sys.stderr)
            return 2
        loaded.append((root, ruleset))
    paths: list[Path] = []
    for value in args.audit_log:
        found = audit_files(Path(value))
        if not found:
            print(f"crmgw rules replay: no audit log at {value}", file=sys.stderr)
            return 2
        paths += [p for p in reversed(found) if p not in paths]  # oldest first
    (current_dir, current), (draft_dir, draft) = loaded
    replayer = Replayer(
        current, draft, examples=max(args.examples, 0), current_dir=str(current_dir), draft_dir=str(draft_dir)
    )
    try:
        for record in read_lines(paths):
            replayer.feed(record)
    except OSError as exc:
        print(f"crmgw rules replay: {exc}", file=sys.stderr)
        return 2
    report = replayer.report()
    print(json.dumps(report, indent=2, default=str) if args.json else render(report))
    return 1 if report["changed"] else 0
