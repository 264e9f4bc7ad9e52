"""The users directory (rules/users.yaml): who may call the gateway, their roles and attributes.

    format: crmgw.rules/v1
    roles:
      sales_rep: {description: Sells to their own customers}
      sales_manager: {description: Leads a sales team, inherits: [sales_rep]}
    users:
      alice:
        name: Alice Martin
        email: alice@example.com
        roles: [sales_rep]
        team: east
        timezone: Europe/Paris
        status: active                    # active | suspended | offboarded
        manager: dave                     # optional: another user, who may approve their four-eyes requests
        attributes: {cost_center: "4100"} # free-form string attributes for data scope
        api_keys: ["sha256:<64 hex>"]     # hashed API keys (service accounts)
        crm_tokens: ["sha256:<64 hex>"]   # hashed CRM personal access tokens

Only hashes of credentials are stored, so the file can be reviewed and versioned without leaking
them. Every problem is reported with file:line:col, all at once: unknown roles, inheritance cycles,
bad time zones, malformed hashes, a hash given to two users (which user would it be?).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from gateway.model import User
from gateway.rulefile import Document, RuleError, StrictModel, load_yaml, validate

# User ids travel to the CRM in headers (X-CRM-User) and into audit lines: keep them plain.
USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
ROLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
HASH = re.compile(r"sha256:[0-9a-f]{64}")
BUILTIN_ATTRIBUTES = frozenset(
    {"user", "id", "name", "email", "team", "department", "region", "branch", "timezone", "status", "manager"}
)


class RoleSpec(StrictModel):
    description: str = ""
    inherits: list[str] = Field(default_factory=list)


class UserSpec(StrictModel):
    name: str = ""
    email: str | None = None
    roles: list[str] = Field(default_factory=list)
    team: str | None = None
    department: str | None = None
    region: str | None = None
    branch: str | None = None
    timezone: str | None = None
    status: Literal["active", "suspended", "offboarded"] = "active"
    manager: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    api_keys: list[str] = Field(default_factory=list)
    crm_tokens: list[str] = Field(default_factory=list)


class UsersFile(StrictModel):
    format: str
    roles: dict[str, RoleSpec]
    users: dict[str, UserSpec]


@dataclasses.dataclass(frozen=True, slots=True)
class RoleDef:
    name: str
    description: str = ""
    inherits: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Directory:
    """The loaded directory; immutable, swapped as a whole when users.yaml changes."""

    users: Mapping[str, User]
    roles: Mapping[str, RoleDef]
    api_keys: Mapping[str, str]  # sha256 hexdigest of the key -> user id
    crm_tokens: Mapping[str, str]  # sha256 hexdigest of the CRM personal access token -> user id

    # attribute -> {value: (user, ...)}, built on first use. The directory is immutable and swapped
    # whole on reload, so an index never goes stale; building one twice (two threads) is harmless.
    _indexes: dict[str, Mapping[str, tuple[User, ...]]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    def get(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def find(self, attribute: str, value: str) -> tuple[User, ...]:
        """Every user whose ``attribute`` (``id``, ``email`` or a custom one) equals ``value``.

        E-mail addresses are compared case-insensitively: identity providers and CRMs do not agree
        on the case of ``Alice@Example.com``, and two users whose addresses differ only in case are
        then both found, which the caller must treat as ambiguous.
        """
        if attribute == "id":
            user = self.users.get(value)
            return (user,) if user is not None else ()
        index = self._indexes.get(attribute)
        if index is None:
            index = self._indexes[attribute] = self._index(attribute)
        return index.get(value.lower() if attribute == "email" else value, ())

    def _index(self, attribute: str) -> Mapping[str, tuple[User, ...]]:
        out: dict[str, tuple[User, ...]] = {}
        for user in self.users.values():
            value = user.attribute(attribute)
            if value is None:
                continue
            key = value.lower() if attribute == "email" else value
            out[key] = out.get(key, ()) + (user,)
        return MappingProxyType(out)


def load_directory(path: Path, display: str) -> tuple[Directory | None, list[RuleError]]:
    """Load and check users.yaml; (directory, []) or (None, every problem found)."""
    doc, errors = load_yaml(path, display)
    if doc is None:
        return None, errors
    spec, schema_errors = validate(doc, UsersFile)
    errors = errors + schema_errors
    if spec is None:
        return None, errors
    errors += _check_names(doc, spec)
    roles, role_errors = _role_closure(doc, spec)
    errors += role_errors
    errors += _check_users(doc, spec)
    api_keys, key_errors = _hash_index(doc, spec, "api_keys")
    crm_tokens, token_errors = _hash_index(doc, spec, "crm_tokens")
    errors += key_errors + token_errors
    if errors:
        return None, errors
    users = {
        uid: User(
            id=uid,
            name=u.name,
            email=u.email,
            roles=frozenset(u.roles),
            effective_roles=frozenset().union(*(roles[r] for r in u.roles)),
            team=u.team,
            department=u.department,
            region=u.region,
            branch=u.branch,
            timezone=u.timezone,
            status=u.status,
            attributes=MappingProxyType(dict(u.attributes)),
            manager=u.manager,
        )
        for uid, u in spec.users.items()
    }
    role_defs = {name: RoleDef(name, r.description, tuple(r.inherits)) for name, r in spec.roles.items()}
    return (
        Directory(
            users=MappingProxyType(users),
            roles=MappingProxyType(role_defs),
            api_keys=MappingProxyType(api_keys),
            crm_tokens=MappingProxyType(crm_tokens),
        ),
        [],
    )


def _check_names(doc: Document, spec: UsersFile) -> list[RuleError]:
    errors = []
    for uid in spec.users:
        if not USER_ID.fullmatch(uid):
            errors.append(doc.error(("users", uid), f"user id {uid!r} must match {USER_ID.pattern}"))
    for name in spec.roles:
        if not ROLE_NAME.fullmatch(name):
            errors.append(doc.error(("roles", name), f"role name {name!r} must match {ROLE_NAME.pattern}"))
    return errors


def _role_closure(doc: Document, spec: UsersFile) -> tuple[dict[str, frozenset[str]], list[RuleError]]:
    """Each role with everything it inherits, transitively; unknown parents and cycles are errors."""
    errors = []
    for name, role in spec.roles.items():
        for i, parent in enumerate(role.inherits):
            if parent not in spec.roles:
                errors.append(
                    doc.error(("roles", name, "inherits", i), f"role {name!r} inherits unknown role {parent!r}")
                )
    closure: dict[str, frozenset[str]] = {}
    reported: set[frozenset[str]] = set()

    def visit(name: str, stack: list[str]) -> frozenset[str]:
        if name in closure:
            return closure[name]
        if name in stack:
            cycle = stack[stack.index(name) :] + [name]
            if frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                errors.append(doc.error(("roles", name, "inherits"), "role inheritance cycle: " + " -> ".join(cycle)))
            return frozenset({name})
        result = {name}
        for parent in spec.roles[name].inherits:
            if parent in spec.roles:
                result |= visit(parent, stack + [name])
        closure[name] = frozenset(result)
        return closure[name]

    for name in spec.roles:
        visit(name, [])
    return closure, errors


def _check_users(doc: Document, spec: UsersFile) -> list[RuleError]:
    errors = []
    for uid, user in spec.users.items():
        for i, role in enumerate(user.roles):
            if role not in spec.roles:
                errors.append(doc.error(("users", uid, "roles", i), f"user {uid!r} has unknown role {role!r}"))
        if user.timezone is not None:
            try:
                ZoneInfo(user.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                errors.append(
                    doc.error(("users", uid, "timezone"), f"unknown time zone {user.timezone!r} (IANA name expected)")
                )
        if user.manager is not None and (user.manager == uid or user.manager not in spec.users):
            errors.append(
                doc.error(
                    ("users", uid, "manager"),
                    f"user {uid!r}: manager {user.manager!r} "
                    + ("is the user themselves" if user.manager == uid else "is not a known user"),
                )
            )
        for key in user.attributes:
            if key in BUILTIN_ATTRIBUTES:
                errors.append(
                    doc.error(
                        ("users", uid, "attributes", key),
                        f"attribute {key!r} is built in; set it with the user's {key!r} key"
                        if key not in ("user", "id")
                        else f"attribute {key!r} is built in (the user id)",
                    )
                )
    return errors


def _hash_index(doc: Document, spec: UsersFile, kind: str) -> tuple[dict[str, str], list[RuleError]]:
    """hexdigest -> user id for ``api_keys`` or ``crm_tokens``; a hash may belong to one user only."""
    index: dict[str, str] = {}
    where: dict[str, int] = {}
    errors = []
    for uid, user in spec.users.items():
        for i, value in enumerate(getattr(user, kind)):
            path = ("users", uid, kind, i)
            if not HASH.fullmatch(value):
                errors.append(doc.error(path, f"{kind} entries must be 'sha256:' and 64 lower-case hex digits"))
                continue
            digest = value.removeprefix("sha256:")
            if digest in index:
                errors.append(
                    doc.error(
                        path,
                        f"this {kind[:-1].replace('_', ' ')} hash is already given to user "
                        f"{index[digest]!r} (line {where[digest]})",
                    )
                )
                continue
            index[digest] = uid
            where[digest] = doc.loc(path)[0]
    return index, errors
