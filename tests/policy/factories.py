"""Real objects for policy tests: the demo catalogue and directory, contexts, compiled rule texts.

Built directly from gateway.model so the policy tests depend on no other area's loader.
"""

from __future__ import annotations

import ipaddress
import textwrap
from datetime import datetime
from typing import Any

from gateway.model import Endpoint, Identity, RequestContext, Resource, ScopeField, User
from gateway.policy import PolicyEngine, compile_policies
from gateway.policy.conditions import build
from gateway.policy.criteria.base import CompileEnv, Criterion
from gateway.rulefile import Document, RuleError, parse_yaml

SCOPE_FIELDS = {
    "own": ScopeField("owner_id", "user"),
    "team": ScopeField("team", "team"),
    "department": ScopeField("department", "department"),
    "region": ScopeField("region", "region"),
    "branch": ScopeField("branch", "branch"),
}
CUSTOMERS = Resource("customers", scope_fields=SCOPE_FIELDS)
CONTACTS = Resource("contacts", scope_fields=SCOPE_FIELDS)
DEALS = Resource("deals", scope_fields=SCOPE_FIELDS)
ADMIN = Resource("admin")  # no scope fields: only scope ``all`` can be granted
RESOURCES = {"customers": CUSTOMERS, "contacts": CONTACTS, "deals": DEALS, "admin": ADMIN}
ACTIONS = {
    "customers": ("list", "view", "create", "update", "delete", "export", "import"),
    "contacts": ("list", "view", "create", "update", "delete"),
    "deals": ("list", "view", "create", "update", "delete"),
    "admin": ("admin",),
}
OPERATIONS = {f"{name}.{action}": RESOURCES[name] for name, actions in ACTIONS.items() for action in actions}
METHODS = {
    "list": "GET",
    "view": "GET",
    "export": "GET",
    "admin": "GET",
    "create": "POST",
    "import": "POST",
    "update": "PUT",
    "delete": "DELETE",
}

ROLES = {"sales_rep", "sales_manager", "admin", "support_agent", "security_analyst", "reporting_service"}
INHERITS = {"sales_manager": {"sales_rep"}, "admin": {"sales_manager", "sales_rep"}}
DIRECTORY = {  # id: (role, team, region, timezone, status)
    "alice": ("sales_rep", "east", "emea", "Europe/Paris", "active"),
    "bob": ("sales_rep", "east", "apac", "Asia/Shanghai", "active"),
    "carol": ("sales_rep", "west", "emea", "Europe/Paris", "active"),
    "dave": ("sales_manager", "east", "emea", "Europe/Paris", "active"),
    "erin": ("sales_manager", "west", "apac", "Asia/Shanghai", "active"),
    "frank": ("support_agent", "support", "emea", "Europe/Paris", "active"),
    "grace": ("admin", "it", "emea", "Europe/Paris", "active"),
    "heidi": ("security_analyst", "security", "emea", "Europe/Paris", "active"),
    "ivan": ("sales_rep", "west", "apac", "Asia/Shanghai", "offboarded"),
    "svc-reporting": ("reporting_service", "it", "emea", "UTC", "active"),
}
USERS = set(DIRECTORY)

# Tuesday 24 November 2026, 10:00 in Paris (UTC+1): inside office hours.
OFFICE_HOURS = datetime.fromisoformat("2026-11-24T10:00:00+01:00")
OFFICE_IP = "10.1.2.3"


def make_user(user_id: str = "alice", **overrides: Any) -> User:
    role, team, region, tz, status = DIRECTORY.get(user_id, ("sales_rep", "east", "emea", "Europe/Paris", "active"))
    roles = frozenset(overrides.pop("roles", (role,)))
    effective = frozenset(roles).union(*(INHERITS.get(r, set()) for r in roles))
    fields: dict[str, Any] = {
        "id": user_id,
        "email": f"{user_id}@example.com",
        "roles": roles,
        "effective_roles": effective,
        "team": team,
        "department": "sales",
        "region": region,
        "branch": "paris",
        "timezone": tz,
        "status": status,
    }
    fields.update(overrides)
    return User(**fields)


def make_identity(user: str | User = "alice", *, mfa: bool = False, **overrides: Any) -> Identity:
    return Identity(user if isinstance(user, User) else make_user(user, **overrides), "jwt", mfa=mfa)


def make_endpoint(operation: str) -> Endpoint:
    resource_name, action = operation.split(".")
    return Endpoint(operation, OPERATIONS[operation], action, METHODS[action], f"/api/{resource_name}")


def make_ctx(
    operation: str | None = "customers.view",
    user: str | User | Identity | None = "alice",
    *,
    ip: str | None = OFFICE_IP,
    country: str | None = None,
    now: datetime | str = OFFICE_HOURS,
    query: dict[str, str] | None = None,
    mfa: bool = False,
    method: str | None = None,
) -> RequestContext:
    identity = user if isinstance(user, Identity) or user is None else make_identity(user, mfa=mfa)
    endpoint = make_endpoint(operation) if operation else None
    return RequestContext(
        request_id="test",
        method=method or (endpoint.method if endpoint else "GET"),
        path="/api/test",
        query=query or {},
        client_ip=ipaddress.ip_address(ip) if ip else None,
        country=country,
        now=datetime.fromisoformat(now) if isinstance(now, str) else now,
        identity=identity,
        endpoint=endpoint,
    )


def parse(text: str, file: str = "policies/test.yaml") -> Document:
    doc, errors = parse_yaml(textwrap.dedent(text), file)
    assert doc is not None and not errors, errors
    return doc


def compile_texts(*texts: str, grants: str | None = None, files: list[str] | None = None):
    names = files or [f"policies/{i:02d}.yaml" for i in range(len(texts))]
    docs = [parse(text, name) for text, name in zip(texts, names)]
    grants_doc = parse(grants, "grants.yaml") if grants is not None else None
    return compile_policies(docs, grants_doc, operations=OPERATIONS, roles=set(ROLES), users=set(USERS))


def make_engine(*texts: str, grants: str | None = None) -> PolicyEngine:
    policy, errors = compile_texts(*texts, grants=grants)
    assert policy is not None and not errors, [str(e) for e in errors]
    return PolicyEngine(policy, revision="test-rev")


def error_strings(*texts: str, grants: str | None = None) -> list[str]:
    policy, errors = compile_texts(*texts, grants=grants)
    assert policy is None and errors
    return [str(e) for e in errors]


def make_criterion(text: str, lists: dict[str, list[str]] | None = None) -> Criterion:
    """Compile one criterion written as YAML, e.g. ``"role: {in: [admin]}"`` (as in an allow block)."""
    criterion, errors = try_criterion(text, lists)
    assert criterion is not None, [str(e) for e in errors]
    return criterion


def try_criterion(text: str, lists: dict[str, list[str]] | None = None) -> tuple[Criterion | None, list[RuleError]]:
    from gateway.policy.criteria.base import ListDef

    doc = parse(text, "criterion.yaml")
    defs = {name: ListDef(name, tuple(values), doc, ("lists", name)) for name, values in (lists or {}).items()}
    errors: list[RuleError] = []
    env = CompileEnv(doc, (), defs, OPERATIONS, frozenset(ROLES), frozenset(USERS), errors)
    node = build(doc.data, env, good=True)
    return (node.criterion if node is not None and not errors else None), errors  # type: ignore[attr-defined]


RULE = """\
format: crmgw.rules/v1
rules:
  - id: {id}
    title: test rule
    match: {{operations: [{ops}]}}
    {body}
"""


def rule(id: str, body: str, ops: str = "customers.view", extra: str = "") -> str:
    """One-rule policy file; ``body`` is the allow/deny block written on one line (flow style)."""
    text = RULE.format(id=id, ops=ops, body=body)
    if extra:
        text += textwrap.indent(textwrap.dedent(extra).rstrip("\n") + "\n", "    ")
    return text
