"""The objects one request carries through the gateway.

``Flow`` is the single per-request object (mitmproxy's HTTPFlow is the model): each stage of
``gateway.pipeline`` reads what earlier stages set and records what it did, and the audit line is
written from it. The other classes are immutable values shared by the stages:

    User ─► Identity ─► RequestContext ─► Decision(obligations) ─► Flow
                    Endpoint/Resource (from the catalogue) ─┘

Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from gateway.declared import AnswerContract, BodyContract, CsvColumn, QueryParam, WriteContract

Effect = Literal["allow", "deny"]
ScopeLevel = Literal["own", "team", "department", "region", "branch", "all"]
SCOPE_LEVELS: tuple[str, ...] = ("own", "team", "department", "region", "branch", "all")
# Narrow to wide; ``all`` is widest. Used to pick the widest scope among allowing rules.
SCOPE_RANK = {name: rank for rank, name in enumerate(("own", "team", "branch", "department", "region", "all"))}
ACTIONS: tuple[str, ...] = ("view", "list", "create", "update", "delete", "export", "import", "admin")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    """One entry of the users directory (rules/users.yaml)."""

    id: str
    name: str = ""
    email: str | None = None
    roles: frozenset[str] = frozenset()  # as declared in the directory
    effective_roles: frozenset[str] = frozenset()  # declared roles plus everything they inherit
    team: str | None = None
    department: str | None = None
    region: str | None = None
    branch: str | None = None
    timezone: str | None = None
    status: str = "active"  # active | suspended | offboarded; only active users get in
    attributes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    manager: str | None = None  # the user id of their manager (four-eyes approvals: gateway.approvals)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def attribute(self, name: str) -> str | None:
        """Identity attribute by name: ``user``/``id``, ``email``, ``team``, ... or a custom one."""
        if name in ("user", "id"):
            return self.id
        if name in ("email", "team", "department", "region", "branch", "timezone", "status", "name", "manager"):
            value: str | None = getattr(self, name)
            return value
        return self.attributes.get(name)


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller: the directory user plus how they proved it."""

    user: User
    method: str  # jwt | api_key | trusted_header | crm_jwt | crm_token
    mfa: bool = False  # the credential carries a multi-factor ``amr``
    claims: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    expires_at: float | None = None  # epoch seconds, for token caches
    # True when the caller used the CRM's own credential: it is forwarded unchanged so the CRM
    # still applies its own checks. False: the gateway strips it and injects its own.
    forward_credential: bool = False

    @property
    def roles(self) -> frozenset[str]:
        return self.user.effective_roles


@dataclasses.dataclass(frozen=True, slots=True)
class ScopeField:
    """Where a record says who it belongs to, and which identity attribute it is compared with."""

    path: str  # field path, e.g. ``owner_id``, ``owner.email``, ``assigned_to[].email``
    identity: str  # identity attribute, e.g. ``user``, ``email``, ``team``
    split: str | None = None  # CSV only: the cell holds several values joined by this separator
    # Membership: the field names a person (by ``identity``, e.g. crm_profile_id) and the record is
    # in scope when that person's ``member_of`` unit (team, department, ...) is the caller's.
    member_of: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Resource:
    """A CRM resource from the catalogue (customers, contacts, deals, ...)."""

    name: str
    id_field: str = "id"
    # scope level (own/team/department/region/branch) -> the record fields that decide it: the record
    # is in scope when ANY of them matches (own = created_by OR assigned_to). A single ScopeField
    # given here is read as a one-field tuple.
    scope_fields: Mapping[str, tuple[ScopeField, ...]] = dataclasses.field(default_factory=dict)
    # The keys a restricted caller may receive in a record (None: every key the CRM sends).
    fields: frozenset[str] | None = None
    # Other spellings of a field (``phone``: ``Phone``, ``mobilePhone``): masks follow them all.
    aliases: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    case_insensitive: bool = False  # ``Phone`` is ``phone`` for masks and for ``fields``
    writes: WriteContract = WriteContract()  # noqa: RUF009 (frozen, shared safely); how written records name owners and teams

    def __post_init__(self) -> None:
        given: Mapping[str, ScopeField | Iterable[ScopeField]] = self.scope_fields  # a lone ScopeField too
        fields = {level: (f,) if isinstance(f, ScopeField) else tuple(f) for level, f in given.items()}
        object.__setattr__(self, "scope_fields", fields)


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """One catalogue entry: an HTTP endpoint of the CRM and the operation it performs."""

    operation: str  # ``resource.action``, e.g. ``customers.view``
    resource: Resource
    action: str  # one of ACTIONS
    method: str
    template: str  # e.g. ``/api/customers/{id}``
    # Field paths to the records in the response body: ``$`` is the body itself (one record),
    # ``data[]`` each item of body["data"]. An empty tuple: the response holds no records.
    records: tuple[str, ...] = ()
    format: str = "json"  # json | csv: the response body format the filter must parse
    # For update/delete: the endpoint template used to GET the record before forwarding.
    lookup: str | None = None
    # For bulk operations: field path in the JSON request body that lists the record ids.
    ids_from_body: str | None = None
    source: str = ""  # file:line of the catalogue entry, for explanations
    # What a restricted caller is held to (gateway.declared): the request body a write accepts
    # (None: no body at all), the query parameters (None: none), the rest of the answer.
    body: BodyContract | None = None
    query: Mapping[str, QueryParam] | None = None
    answer: AnswerContract = AnswerContract()  # noqa: RUF009 (frozen, shared safely)
    # CSV answers: a header as the filter reads it, and this answer's own scope columns.
    csv_columns: Mapping[str, CsvColumn] = dataclasses.field(default_factory=dict)
    csv_scope: Mapping[str, ScopeField] = dataclasses.field(default_factory=dict)

    @property
    def resource_name(self) -> str:
        return self.resource.name


@dataclasses.dataclass(frozen=True, slots=True)
class RequestContext:
    """Everything the decision may look at; built once per request, immutable."""

    request_id: str
    method: str  # canonical upper-case method; HEAD is decided as GET
    path: str  # normalised path: decided on and forwarded, byte for byte
    query: Mapping[str, str]  # single-valued: duplicated parameters are refused earlier
    client_ip: IPAddress | None
    country: str | None  # ISO 3166-1 alpha-2, None when unknown
    now: datetime  # timezone-aware
    identity: Identity | None = None
    endpoint: Endpoint | None = None
    path_params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    user_agent: str = ""

    @property
    def operation(self) -> str | None:
        return self.endpoint.operation if self.endpoint else None


@dataclasses.dataclass(frozen=True, slots=True)
class Mask:
    """A field obligation: remove the field, redact it (keep the last N characters) or hash it."""

    field: str  # field path inside a record
    op: Literal["remove", "redact", "hash"]
    keep_last: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class ApprovalRequirement:
    """A rule's ``approval:`` obligation (four-eyes): the request passes only once a second person
    approved this exact request (gateway.approvals). Approvers: anyone holding one of ``roles``, or
    (``manager``) the requester's manager in the directory; never the requester."""

    rule: str  # the rule that asked for it
    roles: frozenset[str] = frozenset()
    manager: bool = False
    valid_for: int = 3600  # seconds: a pending request, then an approval, lapses after this long


@dataclasses.dataclass(frozen=True, slots=True)
class Obligations:
    """What the response stage must enforce for an allowed request."""

    scope: str = "all"  # one of SCOPE_LEVELS
    masks: tuple[Mask, ...] = ()
    approval: ApprovalRequirement | None = None  # checked by the pipeline once the body is read

    @property
    def needs_body(self) -> bool:
        """A restricted caller: the answer must be read, and only what is declared goes out."""
        return self.scope != "all" or bool(self.masks)


@dataclasses.dataclass(frozen=True, slots=True)
class CriterionTrace:
    """One criterion's outcome inside a rule, e.g. ``time-window-ok`` or ``source-ip-unauthorized``."""

    criterion: str
    result: bool | None  # None: the fact was missing (unknown)
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class RuleTrace:
    """How one rule evaluated: whether it matched the operation and what its blocks said."""

    rule: str
    mode: str  # enforce | shadow
    kind: str  # allow | deny | grant
    matched: bool  # the rule applied to this request (its effect fired)
    criteria: tuple[CriterionTrace, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ShadowResult:
    rule: str
    would: Effect  # what the shadow rule would have done
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The result of policy evaluation, explained.

    ``reason`` is the stable code shown to the client (``role-unauthorized``, ``user-inactive``,
    ``operation-unknown``, ``default-deny``, ...); ``reasons`` lists every criterion reason that led
    there; ``rules`` the deciding rule ids; ``trace`` every evaluated rule (for ``crmgw explain``).
    """

    effect: Effect
    reason: str
    rules: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    obligations: Obligations = Obligations()
    shadow: tuple[ShadowResult, ...] = ()
    trace: tuple[RuleTrace, ...] = ()
    revision: str = ""
    status: int = 403  # HTTP status for a deny (401 when the caller must authenticate)

    @property
    def allowed(self) -> bool:
        return self.effect == "allow"


@dataclasses.dataclass(slots=True)
class Flow:
    """One request's journey through the stages; the audit line is written from it."""

    request_id: str
    started: float = dataclasses.field(default_factory=time.perf_counter)
    received_at: float = dataclasses.field(default_factory=time.time)
    method: str = ""
    raw_target: str = ""
    client_ip: str | None = None
    ctx: RequestContext | None = None
    identity: Identity | None = None
    decision: Decision | None = None
    status: int | None = None  # status sent to the client
    upstream_status: int | None = None
    records_seen: int | None = None  # records in the upstream response
    records_returned: int | None = None  # records left after scope filtering
    record_ids: tuple[str, ...] = ()  # ids of the records returned (for distinct counts)
    targets: int | None = None  # records an update/delete names (bulk deletes name many)
    fields_masked: set[str] = dataclasses.field(default_factory=set)
    error: str | None = None  # stable error code when the gateway, not the rules, refused
    committed_out_of_scope: bool = False  # the CRM committed a write the caller's scope excludes
    upstream_credential: str | None = None  # service | personal | caller | none; None: not forwarded
    approval: dict[str, Any] | None = None  # four-eyes: {id, state} when the request needed an approval
    bytes_out: int = 0
    signals: dict[str, Any] = dataclasses.field(default_factory=dict)
    ruleset: Any = None  # the RuleSet snapshot this request was decided with

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0
