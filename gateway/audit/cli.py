"""``crmgw audit verify FILE...``: check the audit log's hash chain (gateway.audit.chain).
``crmgw audit index FILE [--rebuild]``: bring the search index up to date (gateway.audit.index).

    crmgw audit verify var/audit.log.2 var/audit.log.1 var/audit.log     # oldest first
    crmgw audit verify var/audit.log                                     # the file and its backups
    crmgw audit verify var/audit.log --heads var/audit-heads.jsonl       # and the signed heads

Give the rotated files oldest first (the first line of ``audit.log`` chains to the last line of
``audit.log.1``). A single path that has rotated backups beside it is expanded to all of them,
oldest first. Every problem names the file and line and says what is wrong (edited, lines removed,
reordered, not JSON); the last line printed is the head (seq and sha256) to compare with the
``crmgw_audit_chain_head_info`` metric or a signed head.

Exit codes: 0 the chain holds, 1 a problem was found, 2 a file cannot be read (or a bad key).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _files(paths: list[str]) -> list[Path]:
    if len(paths) == 1:
        from gateway.audit.search import audit_files

        found = audit_files(Path(paths[0]))
        if len(found) > 1:
            return list(reversed(found))  # audit_files is newest first
    return [Path(p) for p in paths]


def cmd_verify(args: argparse.Namespace) -> int:
    from gateway.audit.chain import verify

    files = _files(args.files)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"crmgw audit verify: cannot read {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        report = verify(files)
    except OSError as exc:
        print(f"crmgw audit verify: {exc}", file=sys.stderr)
        return 2
    heads_checked = 0
    if args.heads:
        from gateway.audit.heads import HeadKeyError, check_heads

        try:
            heads_checked, problems = check_heads(Path(args.heads), files, report, key_env=args.key_env)
        except HeadKeyError as exc:
            print(f"crmgw audit verify: {exc}", file=sys.stderr)
            return 2
        report.problems += problems
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "files": report.files,
                    "lines": report.lines,
                    "problems": report.problems,
                    "notes": report.notes,
                    "heads_checked": heads_checked,
                    "head": {"seq": report.head.seq, "sha256": report.head.hash} if report.head else None,
                },
                indent=2,
            )
        )
    else:
        for note in report.notes if args.verbose else report.notes[:5]:
            print(f"note: {note}")
        for problem in report.problems:
            print(problem)
        head = f"head seq {report.head.seq} sha256 {report.head.hash}" if report.head else "no lines"
        signed = f", {heads_checked} signed head(s) checked" if args.heads else ""
        verdict = "ok" if report.ok else f"FAILED: {len(report.problems)} problem(s)"
        print(f"{verdict}: {report.lines} lines in {len(files)} file(s){signed}; {head}")
    return 0 if report.ok else 1


def cmd_index(args: argparse.Namespace) -> int:
    """Update (or with --rebuild, rebuild) ``<FILE>.index.sqlite`` from FILE and its backups."""
    import sqlite3
    import time

    from gateway.audit.index import AuditIndex

    path = Path(args.file)
    if not path.is_file():
        print(f"crmgw audit index: cannot read {path}", file=sys.stderr)
        return 2
    index = AuditIndex(path)
    started = time.perf_counter()
    try:
        done = index.rebuild() if args.rebuild else index.catch_up_all()
    except (OSError, sqlite3.Error) as exc:
        print(f"crmgw audit index: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    size = index.size_bytes()
    summary: dict[str, object] = {
        "index": str(index.db_path),
        "rebuilt": bool(args.rebuild),
        "lines": done.lines,
        "bad_lines": done.bad_lines,
        "bytes_read": done.bytes,
        "files_dropped": done.dropped_files,
        "restarted": done.restarted,
        "seconds": round(seconds, 3),
        "size_bytes": size,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        what = "rebuilt" if args.rebuild else "updated"
        print(
            f"{what} {index.db_path}: {done.lines} new line(s) ({done.bad_lines} not JSON) in {seconds:.1f} s; "
            f"{size / 1e6:.1f} MB"
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="the audit log: verify its hash chain, index it").add_subparsers(
        dest="audit_cmd", required=True
    )
    s = audit.add_parser(
        "verify",
        help="find removed, edited or reordered audit lines (files oldest first)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument(
        "files", nargs="+", metavar="FILE", help="audit files, oldest first (audit.log.2 audit.log.1 audit.log)"
    )
    s.add_argument("--heads", help="signed chain heads (audit.heads_path) to check the files against")
    s.add_argument(
        "--key-env",
        default="CRMGW_AUDIT_HEAD_KEY",
        help="the variable holding the heads' HMAC key (default CRMGW_AUDIT_HEAD_KEY)",
    )
    s.add_argument("--json", action="store_true")
    s.add_argument("-v", "--verbose", action="store_true", help="print every note")
    s.set_defaults(func=cmd_verify)
    i = audit.add_parser(
        "index",
        help="update the search index of an audit log (or rebuild it from the files)",
        description=cmd_index.__doc__,
    )
    i.add_argument("file", metavar="FILE", help="the audit log (audit.path); its rotated backups are read too")
    i.add_argument("--rebuild", action="store_true", help="forget the index and read every file again")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_index)
