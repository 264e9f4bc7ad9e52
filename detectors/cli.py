"""``crmgw simulate`` and ``crmgw detector train|evaluate``.

Hooked into gateway/cli.py with ``register(subparsers)``. Exit codes: 0 ok, 1 the command failed
(bad input data, refused model, no data to work on), 2 bad usage (argparse).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("crmgw.detectors")


def _positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _difficulty(value: str) -> dict[str, str]:
    """``spread_export=hard,compromised_account=easy`` (a bare level applies to every hard scenario)."""
    from detectors.hardscenarios import HARD_SCENARIOS, LEVELS

    out: dict[str, str] = {}
    for part in filter(None, value.split(",")):
        name, _, level = part.rpartition("=")
        if level not in LEVELS or (name and name not in HARD_SCENARIOS):
            raise argparse.ArgumentTypeError(
                f"{part!r}: want [scenario=]{'|'.join(LEVELS)}, scenario in {HARD_SCENARIOS}"
            )
        out.update({name: level} if name else dict.fromkeys(HARD_SCENARIOS, level))
    return out


def cmd_simulate(args: argparse.Namespace) -> int:
    from detectors.simulate import simulate

    started = time.perf_counter()
    try:
        summary = simulate(
            args.users, args.days, args.seed, Path(args.out), incidents=args.incidents, difficulty=args.difficulty
        )
    except (ValueError, OSError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from detectors.train import TrainingError, train

    missing = [p for p in args.audit_log if not Path(p).exists()]
    if missing:
        print(f"detector train: no such file: {', '.join(missing)}", file=sys.stderr)
        return 1
    try:
        card = train(
            args.audit_log,
            Path(args.out),
            labels_path=args.labels,
            verdicts_path=args.verdicts,
            budget=args.budget,
            holdout=args.holdout,
            calibration=args.calibration,
            seed=args.seed,
            workers=args.workers,
            rows_path=Path(args.rows) if args.rows else None,
        )
    except (TrainingError, OSError, ValueError) as exc:
        print(f"detector train: {exc}", file=sys.stderr)
        return 1
    print(
        f"model written to {args.out}: threshold {card.threshold:.3f} for {card.budget:g} false "
        f"alerts per 1,000 user-days ({card.calibration_false_alerts_per_1000:g} on "
        f"{card.rows['calibration_user_days']} calibration user-days); trained on "
        f"{card.rows['training_user_days']} user-days {card.training_range[0]}.."
        f"{card.training_range[1]}; held out from {card.holdout_from or '(none)'}"
    )
    from detectors.signing import ModelKey

    signer = card.signature.key_id if card.signature else "-"
    if signer == ModelKey.demo_key().key_id:
        print("signed with the public demo key: set CRMGW_MODEL_KEY to sign for a deployment", file=sys.stderr)
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from detectors.signing import WeakModelKey, model_key
    from detectors.store import ModelError, resign

    try:
        key = model_key()
        card = resign(Path(args.model), key)
    except (ModelError, WeakModelKey, OSError) as exc:
        print(f"detector sign: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.model}: card signed with {key.describe()} (model sha256 {card.sha256[:16]}, threshold {card.threshold:.3f})"
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Replays the audit logs once on every core into a rows file that ``train --rows`` reads."""
    from detectors.rows import save_rows
    from detectors.train import TrainingError, plan, replay, rows_meta

    try:
        p = plan(args.audit_log, args.labels, args.verdicts, args.holdout, args.calibration)
        ds, state, stats = replay(args.audit_log, p, args.workers)
        save_rows(Path(args.out), ds, state, {"replay": rows_meta(p), **stats})
    except (TrainingError, OSError, ValueError) as exc:
        print(f"detector replay: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"rows": len(ds), "out": args.out, **stats}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from detectors.evaluate import EvaluationError, evaluate
    from detectors.store import ModelError

    try:
        report = evaluate(Path(args.model), args.audit_log, args.labels, all_days=args.all_days, workers=args.workers)
    except (EvaluationError, ModelError, OSError) as exc:
        print(f"detector evaluate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"held-out days {report['evaluated_from']}..{report['evaluated_to']}: "
        f"{report['benign_user_days']} benign user-days, {report['incidents']} incidents"
    )
    print(
        f"false alerts per 1,000 benign user-days: {report['false_alerts_per_1000_user_days']} "
        f"(budget {report['budget']:g}); without the {report['echo_user_days']} echo days: "
        f"{report['false_alerts_per_1000_without_echo']}"
    )
    for kind, k in report["false_alerts_by_day_type"].items():
        print(f"  {kind:<22} {k['per_1000']:>8g} per 1,000 ({k['false_alerts']}/{k['user_days']} user-days)")
    print(f"recall: {report['recall']}   PR-AUC: {report['pr_auc']}")
    for name, s in report["per_scenario"].items():
        delay = "-" if s["median_delay"] is None else f"{s['median_delay']:g} min"
        levels = " ".join(f"{lv} {v['detected']}/{v['incidents']}" for lv, v in s["by_difficulty"].items())
        print(
            f"  {name:<22} recall {s['recall']:<6g} ({s['detected']}/{s['incidents']})  median delay {delay}  [{levels}]"
        )
    for level, v in report["recall_by_difficulty"].items():
        print(f"  difficulty {level:<11} recall {v['recall']:<6g} ({v['detected']}/{v['incidents']})")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = subparsers.add_parser("simulate", help="generate labelled CRM traffic as audit logs")
    sim.add_argument("--users", type=_positive_int, default=200)
    sim.add_argument("--days", type=_positive_int, default=60)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--incidents", type=int, default=None, help="incidents per scenario (default: users*days/300)")
    sim.add_argument(
        "--difficulty",
        type=_difficulty,
        default={},
        help="difficulty of the attacks that look like work: LEVEL or SCENARIO=LEVEL,... (default: drawn per incident)",
    )
    sim.add_argument("--out", required=True, help="directory for audit-*.log and labels.jsonl")
    sim.set_defaults(func=cmd_simulate)

    det = subparsers.add_parser("detector", help="train and evaluate the anomaly detector")
    sub = det.add_subparsers(dest="detector_command", required=True)
    tr = sub.add_parser("train", help="train, calibrate and save a model")
    tr.add_argument("--audit-log", nargs="+", required=True, help="audit files or directories")
    tr.add_argument("--out", required=True, help="model directory")
    tr.add_argument("--labels", help="labels.jsonl: known attacks, kept out of baselines")
    tr.add_argument("--verdicts", help="analyst verdicts (JSON lines) from the alert store")
    tr.add_argument("--budget", type=float, default=5.0, help="false alerts per 1,000 benign user-days (default 5)")
    tr.add_argument(
        "--holdout", type=float, default=0.2, help="share of the last days kept for evaluation (0 for production)"
    )
    tr.add_argument(
        "--calibration", type=float, default=0.2, help="share of the other days used to calibrate the threshold"
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--workers", type=_positive_int, default=None, help="replay processes (default: every core)")
    tr.add_argument("--rows", help="rows file written by 'detector replay' (same labels, verdicts and split)")
    tr.set_defaults(func=cmd_train)
    rp = sub.add_parser("replay", help="replay audit logs on every core into a compact rows file for train --rows")
    rp.add_argument("--audit-log", nargs="+", required=True)
    rp.add_argument("--out", required=True, help="rows file (.npz)")
    rp.add_argument("--labels")
    rp.add_argument("--verdicts")
    rp.add_argument("--holdout", type=float, default=0.2)
    rp.add_argument("--calibration", type=float, default=0.2)
    rp.add_argument("--workers", type=_positive_int, default=None, help="processes (default: every core)")
    rp.set_defaults(func=cmd_replay)
    sg = sub.add_parser("sign", help="sign a model directory's card with CRMGW_MODEL_KEY (adopt a reviewed model)")
    sg.add_argument("--model", required=True, help="model directory")
    sg.set_defaults(func=cmd_sign)
    ev = sub.add_parser("evaluate", help="metrics on the held-out days")
    ev.add_argument("--model", required=True)
    ev.add_argument("--audit-log", nargs="+", required=True)
    ev.add_argument("--labels", required=True)
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--workers", type=_positive_int, default=None, help="replay processes (default: every core)")
    ev.add_argument(
        "--all-days", action="store_true", help="score every day (logs the model has never seen, e.g. another seed)"
    )
    ev.set_defaults(func=cmd_evaluate)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m detectors.cli``) until gateway/cli.py hooks it in."""
    parser = argparse.ArgumentParser(prog="crmgw")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command: Callable[[argparse.Namespace], int] = args.func  # set by register's set_defaults
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
