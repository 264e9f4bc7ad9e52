"""Rule replay: re-decide recorded requests with a draft rules folder and report what would change.

``crmgw rules replay --audit-log FILE --rules DRAFT_DIR`` and the console's rules page both use
:class:`Replayer`. Every audit line that names a request (user, method, path, time) is decided
twice through :func:`gateway.explain.explain` -- the same normalisation, catalogue and engine as the
live gateway -- once with the CURRENT rules and once with the DRAFT, using the recorded user,
method, path and query, time, client address, country, MFA flag and authentication method.

Baseline: the diff is **current re-decision vs draft re-decision**, not recorded decision vs draft.
An audit line may have been decided by an older revision, or refused after the rules allowed it
(an anomaly block, an out-of-scope record, a write's body): comparing with the recording would
report changes the draft did not cause. Lines whose recorded decision differs from the current
re-decision are counted separately (``recorded_differs``), split by whether the line was decided by
another revision; they never count as changes and never change the exit code.

A request changes when its effect (allow <-> deny), data scope, masks or deciding rules differ.
Changes are grouped by (change, rule, user, operation) with counts and a few examples; the rule of
a change is the draft's deciding rule (the one that now denies or allows), else the current one's.

Not replayed: a write's body. Audit lines carry no body, so each request is decided as if it had
none; refusals that depend on the body (a write that would reassign a record out of scope, an
undeclared field) are neither reproduced nor compared. The recorded country is used as recorded
(an address the live gateway could not place stays unknown), so a newer geo database does not
change the answer either.

Shadow rules of the current rules are reported on the same traffic: for each, how many replayed
requests it matched and on how many it would have flipped the decision (a shadow deny on an
allowed request; a shadow allow on a request no enforced deny rule refused).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from detectors.events import is_stream_start
from gateway.audit.search import parse_time
from gateway.explain import explain
from gateway.model import Decision, IPAddress
from gateway.ruleset import RuleSet

EXAMPLES = 3  # examples kept per group (the CLI has its own default, gateway.replay_cli)
NOT_REPLAYED = (
    "a write's body is not in the audit log: every request is decided without one, so "
    "refusals that depend on the body are not replayed"
)
BASELINE = (
    "baseline: the current rules' re-decision of each recorded request (not the recorded "
    "decision, which older rules may have made)"
)


class _RecordedCountry:
    """A geo resolver that answers what the audit line recorded: unknown stays unknown."""

    def __init__(self, country: str | None):
        self._country = country

    def country(self, ip: IPAddress | str | None) -> str | None:  # the signature of GeoResolver.country
        return self._country


def summary(d: Decision) -> dict[str, Any]:
    """What replay compares (and shows) of one decision."""
    return {
        "effect": d.effect,
        "reason": d.reason,
        "rules": list(d.rules),
        "scope": d.obligations.scope if d.allowed else None,
        "masks": sorted(f"{m.field}:{m.op}" + (f":{m.keep_last}" if m.keep_last else "") for m in d.obligations.masks)
        if d.allowed
        else [],
    }


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    if a["effect"] != b["effect"]:
        out.append("effect")
    if a["scope"] != b["scope"]:
        out.append("scope")
    if a["masks"] != b["masks"]:
        out.append("masks")
    if a["rules"] != b["rules"]:
        out.append("rule")
    return out


def change_kind(a: dict[str, Any], b: dict[str, Any], changed: list[str]) -> str:
    if "effect" in changed:
        return f"{a['effect']} -> {b['effect']}"
    if "scope" in changed:
        return f"scope {a['scope']} -> {b['scope']}"
    if "masks" in changed:
        return "masks changed"
    return "deciding rule changed"


def target_of(record: dict[str, Any]) -> str:
    """The recorded path with its (decoded, single-valued) query encoded again."""
    query = record.get("query")
    path: str = record["path"]
    return path + ("?" + urlencode(query) if isinstance(query, dict) and query else "")


def replayable(record: dict[str, Any]) -> str | None:
    """Why the line cannot be replayed, or None."""
    if not isinstance(record.get("method"), str) or not isinstance(record.get("path"), str):
        return "not a request line"
    if parse_time(record.get("time")) is None:
        return "no time"
    if not isinstance(record.get("user"), str) or not record["user"]:
        return "no identified user (refused before the rules)"
    return None


def _example(record: dict[str, Any], current: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
    return {
        "decision_id": record.get("decision_id"),
        "time": record.get("time"),
        "user": record.get("user"),
        "method": record.get("method"),
        "target": target_of(record),
        "operation": record.get("operation"),
        "current": current,
        "draft": draft,
    }


@dataclasses.dataclass
class Group:
    change: str
    rule: str
    user: str
    operation: str
    count: int = 0
    examples: list[dict[str, Any]] = dataclasses.field(default_factory=list)


class Replayer:
    """Feed audit records one at a time (:meth:`feed`); read the report with :meth:`report`."""

    def __init__(
        self, current: RuleSet, draft: RuleSet, *, examples: int = EXAMPLES, current_dir: str = "", draft_dir: str = ""
    ):
        self.current, self.draft = current, draft
        self.current_dir, self.draft_dir = current_dir, draft_dir
        self.examples = examples
        self.lines = 0
        self.replayed = 0
        self.skipped: Counter[str] = Counter()
        self.bad_lines = 0
        self.changed = 0
        self.kinds: Counter[str] = Counter()
        self.by_rule: Counter[str] = Counter()
        self.by_user: Counter[str] = Counter()
        self.by_operation: Counter[str] = Counter()
        self.groups: dict[tuple[str, str, str, str], Group] = {}
        self.recorded_differs = {"other_revision": 0, "same_revision": 0}
        self.recorded_examples: list[dict[str, Any]] = []
        self.shadow: dict[str, dict[str, Any]] = {
            r.id: {"rule": r.id, "kind": r.kind, "source": r.source, "matched": 0, "would_flip": 0, "examples": []}
            for r in current.engine.policy.rules.values()
            if r.mode == "shadow"
        }
        self.truncated = False

    # --- one record --------------------------------------------------------------------------------
    def decide(self, ruleset: RuleSet, record: dict[str, Any]) -> Decision:
        auth = record.get("auth")
        at = parse_time(record["time"])
        if at is None:  # feed() replays only lines with a time (replayable)
            raise ValueError(f"no time in the audit line: {record['time']!r}")
        return explain(
            ruleset,
            user=record["user"],
            method=record["method"],
            path=target_of(record),
            at=at,
            ip=record.get("client_ip") or None,
            mfa=bool(record.get("mfa")),
            country=record.get("country"),
            geo=_RecordedCountry(record.get("country")),
            auth_method=auth if isinstance(auth, str) and auth else "explain",
        ).decision

    def feed(self, record: Any) -> None:
        self.lines += 1
        if not isinstance(record, dict):
            self.bad_lines += 1
            return
        why = replayable(record)
        if why is not None:
            self.skipped[why] += 1
            return
        try:
            now_d = self.decide(self.current, record)
            new_d = self.decide(self.draft, record)
        except ValueError as exc:  # a recorded address that does not parse
            self.skipped[f"cannot re-decide: {type(exc).__name__}"] += 1
            return
        self.replayed += 1
        now, new = summary(now_d), summary(new_d)
        self._recorded(record, now)
        self._shadow(record, now_d)
        changed = differences(now, new)
        if not changed:
            return
        self.changed += 1
        kind = change_kind(now, new, changed)
        rule = (new["rules"] or now["rules"] or ["(no rule: default deny)"])[0]
        user, operation = record["user"], record.get("operation") or "(unmapped)"
        self.kinds[kind] += 1
        self.by_rule[rule] += 1
        self.by_user[user] += 1
        self.by_operation[operation] += 1
        group = self.groups.setdefault((kind, rule, user, operation), Group(kind, rule, user, operation))
        group.count += 1
        if len(group.examples) < self.examples:
            group.examples.append({**_example(record, now, new), "changed": changed})

    def _recorded(self, record: dict[str, Any], now: dict[str, Any]) -> None:
        recorded_scope = record.get("scope") if record.get("effect") == "allow" else None
        if record.get("effect") == now["effect"] and recorded_scope == now["scope"]:
            return
        labels = record.get("labels")
        if not isinstance(labels, dict):
            labels = {}
        other = labels.get("revision") != self.current.revision
        self.recorded_differs["other_revision" if other else "same_revision"] += 1
        if other and len(self.recorded_examples) < self.examples:
            self.recorded_examples.append(
                {
                    "decision_id": record.get("decision_id"),
                    "time": record.get("time"),
                    "user": record.get("user"),
                    "method": record.get("method"),
                    "target": target_of(record),
                    "revision": labels.get("revision"),
                    "recorded": {
                        "effect": record.get("effect"),
                        "reason": record.get("reason"),
                        "scope": recorded_scope,
                    },
                    "current": now,
                }
            )

    def _shadow(self, record: dict[str, Any], d: Decision) -> None:
        for s in d.shadow:
            entry = self.shadow.get(s.rule)
            if entry is None:
                continue
            entry["matched"] += 1
            if s.would == "deny":
                flips = d.allowed
            else:
                flips = not d.allowed and not any(
                    t.matched and t.kind == "deny" and t.mode == "enforce" for t in d.trace
                )
            if flips:
                entry["would_flip"] += 1
                if len(entry["examples"]) < self.examples:
                    entry["examples"].append(
                        {
                            "decision_id": record.get("decision_id"),
                            "time": record.get("time"),
                            "user": record.get("user"),
                            "method": record.get("method"),
                            "target": target_of(record),
                            "effect": d.effect,
                            "would": s.would,
                            "reason": s.reason,
                        }
                    )

    # --- the report --------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        groups = sorted(self.groups.values(), key=lambda g: (-g.count, g.change, g.rule, g.user, g.operation))
        return {
            "current": {"dir": self.current_dir, "revision": self.current.revision},
            "draft": {"dir": self.draft_dir, "revision": self.draft.revision},
            "baseline": BASELINE,
            "not_replayed": NOT_REPLAYED,
            "lines": self.lines,
            "replayed": self.replayed,
            "skipped": dict(self.skipped),
            "bad_lines": self.bad_lines,
            "truncated": self.truncated,
            "changed": self.changed,
            "changes": dict(self.kinds.most_common()),
            "by_rule": dict(self.by_rule.most_common()),
            "by_user": dict(self.by_user.most_common()),
            "by_operation": dict(self.by_operation.most_common()),
            "groups": [dataclasses.asdict(g) for g in groups],
            "recorded_differs": dict(self.recorded_differs),
            "recorded_differs_examples": self.recorded_examples,
            "shadow": sorted(self.shadow.values(), key=lambda s: s["rule"]),
        }


def read_lines(paths: Iterable[Path]) -> Iterator[Any]:
    """Every request line of the given audit files, oldest file first as given; a line that does not
    parse is yielded as None (counted as a bad line). A streamed export's start line is no request
    (its final line is): skipped."""
    for path in paths:
        with open(path, "rb") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    yield None
                    continue
                if not (isinstance(record, dict) and is_stream_start(record)):
                    yield record


def _decision_text(d: dict[str, Any]) -> str:
    if d["effect"] == "allow":
        masks = ",".join(d["masks"]) or "none"
        return f"allow by {','.join(d['rules']) or '-'} (scope {d['scope']}, masks {masks})"
    return f"deny {d['reason']}" + (f" by {','.join(d['rules'])}" if d["rules"] else "")


def render(report: dict[str, Any]) -> str:
    """The report as text for a terminal or a CI log."""
    skipped = sum(report["skipped"].values())
    lines = [
        f"replay: {report['lines']} audit line(s), {report['replayed']} re-decided, {skipped} skipped"
        + (f", {report['bad_lines']} unreadable" if report["bad_lines"] else ""),
        f"  current {report['current']['dir']} (revision {report['current']['revision']})",
        f"  draft   {report['draft']['dir']} (revision {report['draft']['revision']})",
        f"  {report['baseline']}",
        f"  not replayed: {report['not_replayed']}",
    ]
    for why, n in sorted(report["skipped"].items()):
        lines.append(f"  skipped {n}: {why}")
    if not report["changed"]:
        lines.append("no request changes")
    else:
        lines.append(
            f"{report['changed']} request(s) change: " + ", ".join(f"{k} {n}" for k, n in report["changes"].items())
        )
        for title, key in (("by rule", "by_rule"), ("by user", "by_user"), ("by operation", "by_operation")):
            lines.append(f"  {title}: " + ", ".join(f"{k} {n}" for k, n in report[key].items()))
        for g in report["groups"]:
            lines.append(
                f"  [{g['count']}] {g['change']}  rule {g['rule']}  user {g['user']}  operation {g['operation']}"
            )
            for ex in g["examples"]:
                lines.append(f"      {ex['time']} {ex['method']} {ex['target']} ({ex['decision_id']})")
                lines.append(f"        now:   {_decision_text(ex['current'])}")
                lines.append(f"        draft: {_decision_text(ex['draft'])}")
    for s in report["shadow"]:
        lines.append(
            f"shadow {s['rule']} (would {s['kind']}): matched {s['matched']}, "
            f"would have flipped {s['would_flip']} decision(s)"
        )
    differs = report["recorded_differs"]
    if differs["other_revision"] or differs["same_revision"]:
        lines.append(
            f"note: the recorded decision differs from the current rules' for {differs['other_revision']} "
            f"line(s) decided by another revision and {differs['same_revision']} decided by this one "
            "(refused after the rules: an anomaly block, a record out of scope, a write's body); not counted "
            "as changes"
        )
        for ex in report["recorded_differs_examples"]:
            lines.append(
                f"      {ex['time']} {ex['method']} {ex['target']} revision {ex['revision']}: recorded "
                f"{ex['recorded']['effect']} {ex['recorded']['reason']}, now {_decision_text(ex['current'])}"
            )
    return "\n".join(lines)
