"""``crmgw``: serve, demo, token, rules check|test|replay, explain.

Exit codes are meant for CI: 0 success, 1 a check or test failed (or a decision was deny, for
``explain --exit-code``; a request that a draft decides differently, for ``rules replay``), 2 bad usage
or configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # building the parser imports nothing of the rules engine
    from gateway.policy.compiled import CompiledGrant
    from gateway.ruleset import RuleSet

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "rules"


def _rules_dir(value: str | None) -> Path:
    return Path(value) if value else (Path("rules") if Path("rules").is_dir() else DEFAULT_RULES)


def _load_rules(value: str | None) -> RuleSet | None:
    """The rule set, or None after printing every problem to stderr."""
    from gateway.ruleset import load_ruleset

    ruleset, errors = load_ruleset(_rules_dir(value))
    for e in errors:
        print(e, file=sys.stderr)
    return ruleset


def cmd_rules_check(args: argparse.Namespace) -> int:
    from gateway.ruleset import load_ruleset

    root = _rules_dir(args.dir)
    ruleset, errors = load_ruleset(root)
    for e in errors:
        print(e)
    if ruleset is None:
        print(f"{len(errors)} problem(s) in {root}", file=sys.stderr)
        return 1
    for warning in ruleset.catalogue.warnings:
        print(warning)
    print(
        f"ok: {len(ruleset.files)} files, revision {ruleset.revision}"
        + (f", {len(ruleset.catalogue.warnings)} warning(s)" if ruleset.catalogue.warnings else "")
    )
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    from gateway.ruleset import load_ruleset
    from gateway.ruletests import run_all

    root = _rules_dir(args.dir)
    ruleset, errors = load_ruleset(root)
    if ruleset is None:
        for e in errors:
            print(e)
        print("rules do not load; no test ran", file=sys.stderr)
        return 1
    outcomes, errors = run_all(root, ruleset)
    for e in errors:
        print(e)
    failed = [o for o in outcomes if not o.passed]
    for o in outcomes:
        if not o.passed or args.verbose:
            print(f"{'PASS' if o.passed else 'FAIL'} {o.file}:{o.line} {o.name}")
            for p in o.problems:
                print(f"     {p}")
    print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    if not outcomes:
        print("no policy test ran: add cases to rules/tests/*.yaml", file=sys.stderr)
        return 1
    return 1 if failed or errors else 0


def cmd_explain(args: argparse.Namespace) -> int:
    from gateway.explain import decision_dict, explain, parse_time, render

    settings = None
    if args.config:  # gateway.access: the approved access requests of the settings' store
        from gateway.access.cli import load_settings_or_none

        settings = load_settings_or_none(args.config)
        if settings is None:
            return 2
    ruleset = _load_rules(args.rules or (str(settings.path(settings.rules_dir)) if settings else None))
    if ruleset is None:
        return 2
    try:
        at = parse_time(args.at)
    except ValueError as exc:
        print(f"--at: {exc}", file=sys.stderr)
        return 2
    grants: tuple[CompiledGrant, ...] = ()
    if settings is not None:
        from gateway.access.cli import grants_for_user

        grants = grants_for_user(settings, args.user)
    body = args.body.encode("utf-8") if args.body is not None else b""
    if args.body_file:
        body = Path(args.body_file).read_bytes()
    content_type = args.content_type or ("application/json" if body else None)
    result = explain(
        ruleset,
        user=args.user,
        method=args.method,
        path=args.path,
        at=at,
        ip=args.ip,
        mfa=args.mfa,
        country=args.country,
        body=body,
        content_type=content_type,
        auth_method=args.auth_method or "explain",
        grants=grants,
    )
    if args.json:
        print(json.dumps(decision_dict(result.decision, result.ctx, ruleset), indent=2, default=str))
    else:
        print(render(result.decision, result.ctx, ruleset))
    return 1 if args.exit_code and not result.decision.allowed else 0


TOKEN_HELP = """\
Print a bearer token for a directory user.

Without --config the token is signed with the built-in DEVELOPMENT key (HS256 with a public
secret, issuer crmgw-dev): for the demo and the tests only; a gateway configured with its own
keys refuses it.

With --config gateway.yaml it is signed for that gateway's identity.jwt section: with its shared
secret for HS* algorithms, or with --private-key FILE (the identity provider's unencrypted PEM
private key; the settings hold public keys only) for RS/PS/ES/EdDSA, plus --kid when the gateway
reads a JWKS. The claims follow the section (user_claim, user_attribute, issuer, audience,
require), and the token is verified with the gateway's own verifier before it is printed.
"""
DEV_KEY_NOTICE = (
    "crmgw token: signed with the DEVELOPMENT key (a public secret): for the demo only; "
    "use --config gateway.yaml to sign with a gateway's configured keys"
)


def cmd_token(args: argparse.Namespace) -> int:
    if args.config:
        return _token_for_settings(args)
    from gateway.identity.devkeys import mint_token

    if args.private_key or args.kid:
        print("--private-key and --kid sign for a gateway's settings: give --config too", file=sys.stderr)
        return 2
    ruleset = _load_rules(args.rules)
    if ruleset is None:
        return 2
    if ruleset.directory.get(args.user) is None:
        print(f"unknown user {args.user!r}; known: {', '.join(sorted(ruleset.directory.users))}", file=sys.stderr)
        return 2
    print(DEV_KEY_NOTICE, file=sys.stderr)
    print(mint_token(args.user, ttl_seconds=args.ttl, mfa=args.mfa))
    return 0


def _token_for_settings(args: argparse.Namespace) -> int:
    from gateway.identity.minting import SECTION, MintError, mint_configured
    from gateway.settings import load_settings

    settings, errors = load_settings(Path(args.config))
    for e in errors:
        print(e, file=sys.stderr)
    if settings is None:
        return 2
    cfg = settings.identity.jwt
    if cfg is None or not cfg.enabled:
        print(f"crmgw token: {args.config} has no enabled {SECTION} section: nothing to sign for", file=sys.stderr)
        return 2
    ruleset = _load_rules(args.rules or str(settings.path(settings.rules_dir)))
    if ruleset is None:
        return 2
    try:
        token = mint_configured(
            cfg,
            Path(settings.base_dir),
            ruleset.directory,
            args.user,
            ttl_seconds=args.ttl,
            mfa=args.mfa,
            private_key=Path(args.private_key) if args.private_key else None,
            kid=args.kid,
        )
    except MintError as exc:
        print(f"crmgw token: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"crmgw token: signed for {SECTION} of {args.config}", file=sys.stderr)
    print(token)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    rules = _rules_dir(args.rules) if args.rules or args.profile == "classic" else None
    return run_demo(port=args.port, crm_port=args.crm_port, gzip=args.gzip, rules=rules, profile=args.profile)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crmgw", description="CRM Access Gateway")
    sub = p.add_subparsers(dest="command", required=True)

    from gateway.serve_args import add_serve_arguments, run_from_args  # imports the server only to run it

    s = sub.add_parser("serve", help="run the gateway")
    add_serve_arguments(s)  # --config, --workers, --drain-timeout, --max-connections, --request-timeout
    s.set_defaults(func=run_from_args)

    s = sub.add_parser("demo", help="run the demo CRM and the gateway with the example rules")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--crm-port", type=int, default=8081)
    s.add_argument("--gzip", action="store_true", help="the demo CRM gzips its responses")
    s.add_argument(
        "--profile",
        choices=("classic", "realistic"),
        default="classic",
        help="realistic: a CRM with UUIDs, trailing slashes, counts and side lists (examples/realistic)",
    )
    s.add_argument("--rules", help="rules folder (default: ./rules, or examples/realistic for --profile realistic)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser(
        "token",
        help="print a token for a directory user (the demo's development key unless --config)",
        description=TOKEN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("user")
    s.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    s.add_argument("--mfa", action="store_true", help="mark the token as multi-factor (amr)")
    s.add_argument("--rules", help="rules folder (default: ./rules, or the settings' rules_dir with --config)")
    s.add_argument("--config", help="sign for this gateway.yaml's identity.jwt instead of the development key")
    s.add_argument("--private-key", help="with --config: the PEM private key for RS/PS/ES/EdDSA")
    s.add_argument("--kid", help="with --config: the key id to put in the token's header")
    s.set_defaults(func=cmd_token)

    rules = sub.add_parser("rules", help="check and test rule files").add_subparsers(dest="rules_cmd", required=True)
    s = rules.add_parser("check", help="report every problem as file:line:col: message")
    s.add_argument("dir", nargs="?")
    s.set_defaults(func=cmd_rules_check)
    s = rules.add_parser("test", help="run the policy unit tests in DIR/tests/*.yaml")
    s.add_argument("dir", nargs="?")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_rules_test)
    from gateway.replay_cli import register as register_replay

    register_replay(rules)  # crmgw rules replay --audit-log FILE --rules DRAFT_DIR

    from gateway.explain_defaults import DEFAULT_IP, DEFAULT_METHOD  # shared with the console's explain form

    s = sub.add_parser("explain", help="show the decision for a described request")
    s.add_argument("--user", required=True)
    s.add_argument("--method", default=DEFAULT_METHOD, help=f"default {DEFAULT_METHOD}")
    s.add_argument("--path", required=True)
    s.add_argument("--at", help="ISO time with offset, e.g. 2026-03-02T18:30:00+01:00 (default now)")
    s.add_argument("--ip", default=DEFAULT_IP, help=f"client address (default {DEFAULT_IP}; '' for unknown)")
    s.add_argument("--country", help="override the country looked up for --ip")
    s.add_argument("--mfa", action="store_true")
    s.add_argument(
        "--auth-method",
        choices=("jwt", "api_key", "trusted_header", "crm_jwt", "crm_token"),
        help="how the caller authenticated, for rules with an auth_method criterion",
    )
    s.add_argument("--body", help='the request body, e.g. \'{"owner_id": "bob"}\' (writes are decided on it)')
    s.add_argument("--body-file", help="read the request body from this file")
    s.add_argument("--content-type", help="the body's Content-Type (default application/json)")
    s.add_argument("--rules", help="rules folder (default: ./rules)")
    s.add_argument(
        "--config",
        help="gateway settings: also apply the user's approved access requests "
        "(and use the settings' rules_dir unless --rules)",
    )
    s.add_argument("--json", action="store_true")
    s.add_argument("--exit-code", action="store_true", help="exit 1 when the decision is deny")
    s.set_defaults(func=cmd_explain)
    from gateway.alerts.cli import register as register_alerts

    register_alerts(sub)
    from detectors.cli import register as register_detectors

    register_detectors(sub)
    from gateway.drafting.cli import register as register_catalogue

    register_catalogue(sub)  # crmgw catalogue draft --openapi FILE | --audit-log FILE
    from gateway.signals.cli import register as register_signals

    register_signals(sub)  # crmgw signals rebuild --audit-log FILE
    from gateway.signals.blocks_cli import register as register_blocks

    register_blocks(sub)  # crmgw blocks list | lift USER --note "..."
    from gateway.governance.cli import register as register_users

    register_users(sub)  # crmgw users: the directory with suspensions, blocks and step-ups
    from gateway.approvals.cli import register as register_approvals

    register_approvals(sub)  # crmgw approvals list | approve ID | reject ID --note "..."
    from gateway.access.cli import register as register_access

    register_access(sub)  # crmgw access request | list | approve ID | reject ID | revoke ID
    from gateway.scaffold import register as register_init

    register_init(sub)  # crmgw init DIR --crm-url URL
    from gateway.audit.cli import register as register_audit

    register_audit(sub)  # crmgw audit verify FILE... (the hash chain)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
