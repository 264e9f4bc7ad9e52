"""The rule set: every admin-owned file of the rules folder, loaded and cross-checked as one unit.

    rules/
      users.yaml          directory of users and roles     -> gateway.identity.directory
      operations.yaml     catalogue of CRM endpoints       -> gateway.context.catalogue
      policies/*.yaml     allow/deny rules                 -> gateway.policy
      grants.yaml         time-boxed grants (optional)     -> gateway.policy
      anomalies.yaml      declared thresholds (optional)   -> gateway.signals
      tests/*.yaml        policy unit tests (not loaded here; see gateway.ruletests)

A RuleSet is built aside and only handed out when every file loaded without a single error; the
store then swaps it in with one assignment (Pomerium's config source, Casbin's load_policy).
The revision is a hash of every file's bytes, so audit lines name exactly which rules decided.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

from gateway.context.catalogue import Catalogue, load_catalogue
from gateway.identity.directory import Directory, load_directory
from gateway.policy import PolicyEngine, compile_policies
from gateway.rulefile import Document, RuleError, load_yaml
from gateway.signals.anomalies import AnomalyRules, load_anomalies

REQUIRED = ("users.yaml", "operations.yaml")


@dataclasses.dataclass(frozen=True, slots=True)
class RuleSet:
    directory: Directory
    catalogue: Catalogue
    engine: PolicyEngine
    revision: str
    loaded_at: float
    files: tuple[str, ...]
    anomalies: AnomalyRules | None = None


def rule_files(root: Path) -> list[Path]:
    """Every file that makes up the rule set, in a stable order (tests/ excluded)."""
    files = [root / name for name in ("users.yaml", "operations.yaml", "grants.yaml", "anomalies.yaml")]
    files += sorted((root / "policies").glob("*.yaml"))
    files += sorted((root / "policies").glob("*.yml"))
    return [f for f in files if f.is_file()]


def signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detector for the watcher: names, sizes and mtimes of the rule files."""
    out = []
    for f in rule_files(root):
        try:
            st = f.stat()
        except OSError:
            continue
        out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


def revision_of(root: Path) -> str:
    digest = hashlib.sha256()
    for f in rule_files(root):
        digest.update(f.relative_to(root).as_posix().encode() + b"\0")
        digest.update(f.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _display(root: Path, f: Path) -> str:
    try:
        return f.relative_to(root.parent).as_posix()
    except ValueError:
        return str(f)


def load_ruleset(root: Path) -> tuple[RuleSet | None, list[RuleError]]:
    """Load and cross-check the whole rules folder; all problems at once, file:line:col each."""
    root = Path(root)
    errors: list[RuleError] = []
    if not root.is_dir():
        return None, [RuleError(str(root), 1, 1, "rules folder does not exist")]
    for name in REQUIRED:
        if not (root / name).is_file():
            errors.append(RuleError(_display(root, root / name), 1, 1, "required file is missing"))
    policy_files = [f for f in rule_files(root) if f.parent.name == "policies"]
    if not policy_files:
        errors.append(RuleError(_display(root, root / "policies"), 1, 1, "no policy files (*.yaml)"))
    if errors:
        # Still read the files that are there: a new catalogue's problems (its TODOs) are worth
        # seeing before the rest of the folder is written.
        if (root / "operations.yaml").is_file():
            errors += load_catalogue(root / "operations.yaml", _display(root, root / "operations.yaml"))[1]
        if (root / "users.yaml").is_file():
            errors += load_directory(root / "users.yaml", _display(root, root / "users.yaml"))[1]
        return None, errors
    try:
        revision = revision_of(root)
    except OSError as exc:
        return None, [RuleError(str(root), 1, 1, f"cannot read rules: {exc}")]

    directory, errs = load_directory(root / "users.yaml", _display(root, root / "users.yaml"))
    errors += errs
    catalogue, errs = load_catalogue(root / "operations.yaml", _display(root, root / "operations.yaml"))
    errors += errs
    docs: list[Document] = []
    for f in policy_files:
        doc, errs = load_yaml(f, _display(root, f))
        errors += errs
        if doc is not None:
            docs.append(doc)
    grants_doc = None
    if (root / "grants.yaml").is_file():
        grants_doc, errs = load_yaml(root / "grants.yaml", _display(root, root / "grants.yaml"))
        errors += errs
    if directory is None or catalogue is None:
        return None, errors
    anomalies = None
    if (root / "anomalies.yaml").is_file():
        anomalies, errs = load_anomalies(
            root / "anomalies.yaml",
            _display(root, root / "anomalies.yaml"),
            operations=set(catalogue.operations),
            roles=set(directory.roles),
            users=set(directory.users),
        )
        errors += errs
    policy, errs = compile_policies(
        docs,
        grants_doc,
        operations=catalogue.operations,
        roles=set(directory.roles),
        users=set(directory.users),
    )
    errors += errs
    if policy is None or errors:
        return None, errors
    engine = PolicyEngine(policy, revision=revision)
    files = tuple(_display(root, f) for f in rule_files(root))
    return RuleSet(directory, catalogue, engine, revision, time.time(), files, anomalies), []
