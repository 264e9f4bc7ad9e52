"""Small builders for the response filter's tests: real model objects, demo-like data."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.declared import Aggregate, AnswerContract
from gateway.model import Endpoint, Identity, Mask, Obligations, Resource, ScopeField, User
from gateway.response import FilterResult, apply_obligations

_ORG = {"team": "team", "department": "department", "region": "region", "branch": "branch"}

CUSTOMERS = Resource(
    "customers",
    scope_fields={"own": ScopeField("owner_id", "user"), **{k: ScopeField(v, k) for k, v in _ORG.items()}},
)
CONTACTS = Resource(
    "contacts", scope_fields={"own": ScopeField("owner.id", "user"), "team": ScopeField("team", "team")}
)
DEALS = Resource("deals", scope_fields={"own": ScopeField("assigned_to[].email", "email")})
UNSCOPED = Resource("settings")

DEMO_USERS = {
    "alice": {"team": "east", "department": "sales", "region": "emea", "branch": "paris"},
    "bob": {"team": "east", "department": "sales", "region": "apac", "branch": "shanghai"},
    "carol": {"team": "west", "department": "sales", "region": "emea", "branch": "paris"},
}


def user(user_id: str = "alice", **overrides: Any) -> User:
    fields: dict[str, Any] = dict(DEMO_USERS.get(user_id, {}), email=f"{user_id}@example.com")
    fields.update(overrides)
    return User(id=user_id, name=user_id.title(), roles=frozenset({"sales_rep"}), **fields)


def identity(user_id: str = "alice", **overrides: Any) -> Identity:
    return Identity(user=user(user_id, **overrides), method="jwt")


# What the demo catalogue declares beside the customers list: the page metadata and a recomputed total.
PAGE = AnswerContract(aggregates=(Aggregate("total", "count"),), metadata=("page", "page_size"))


def endpoint(
    resource: Resource = CUSTOMERS,
    records: tuple[str, ...] = ("data[]",),
    fmt: str = "json",
    action: str = "list",
    answer: AnswerContract = PAGE,
    **extra: Any,
) -> Endpoint:
    return Endpoint(
        operation=f"{resource.name}.{action}",
        resource=resource,
        action=action,
        method="GET",
        template=f"/api/{resource.name}",
        records=records,
        format=fmt,
        answer=answer,
        **extra,
    )


def customer(cid: int, owner: str = "alice", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = dict(
        id=cid,
        name=f"Customer {cid}",
        email=f"c{cid}@client.example",
        phone="+33 1 23 45 67 89",
        owner_id=owner,
        **DEMO_USERS.get(owner, {}),
        complaints="late delivery",
    )
    record.update(overrides)
    return record


def customers_page(*owners: str) -> dict[str, Any]:
    data = [customer(i, owner) for i, owner in enumerate(owners, start=1)]
    return {"data": data, "page": 1, "page_size": 50, "total": len(data)}


def obligations(scope: str = "all", *masks: Mask) -> Obligations:
    return Obligations(scope=scope, masks=masks)


def run(
    body: Any,
    *,
    ep: Endpoint | None = None,
    ob: Obligations | None = None,
    who: Identity | None = None,
    content_type: str | None = "application/json",
    encoding: str | None = None,
    max_bytes: int = 1 << 20,
) -> FilterResult:
    """apply_obligations with test defaults; a non-bytes body is JSON-encoded first."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return apply_obligations(
        raw,
        content_type=content_type,
        content_encoding=encoding,
        endpoint=ep or endpoint(),
        obligations=ob or obligations(),
        identity=who or identity(),
        max_bytes=max_bytes,
    )
