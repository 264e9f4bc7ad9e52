"""Writes decided before the CRM sees them: the body of a create/update/bulk request.

A check on the CRM's answer comes after the write is committed: it can raise an alert, never undo.
So for a caller whose data scope is not ``all``, the request body itself must show that the written
records stay inside that scope. From the endpoint's ``body`` contract and the resource's ``writes``
contract (gateway.declared):

    body-unreadable / body-media-undeclared   not a body the gateway reads the way the CRM will
    body-not-allowed   a body on GET / HEAD / DELETE that the endpoint does not declare (anyone)
    body-undeclared    a body on an endpoint that declares none (restricted callers); an XML body
                       that is not exactly the declared call (anyone: gateway.response.xmlcall)
    field-not-writable a key the caller may not write (per role, optionally)
    owner-unresolvable a person or team value that is not exactly one directory entry: unknown
                       id or e-mail, an ambiguous one, null, an empty list, an undeclared object
                       key, a file
    owner-missing      a created record names no owner and the CRM is not declared to assign
                       the caller
    write-out-of-scope a resolved owner, or a team / department / region / branch value, that lies
                       outside the caller's scope

Scope of a write: the users within the caller's scope are the caller (``own``) or every directory
user sharing the caller's team / department / ... . A person may be named if they are one of those
users; a team (department, ...) value if one of those users holds it. So a field the CRM derives
from the owner (the new owner's team) is checked through the owner, and a value a rep cannot reach
through any colleague is refused, whatever spelling the body uses.

This is the data-scope obligation enforced on a request rather than on an answer, so it lives with
the answer's checks (gateway.response); the pipeline runs it before gateway.upstream sends anything.
The records an update or delete names by id are read and checked by gateway.response.write_targets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway import fieldpath
from gateway.context.catalogue import Reference
from gateway.declared import BodyContract, OrgField, PeopleField, WriteContract
from gateway.errors import BadRequest, Forbidden, ObligationUnenforceable
from gateway.identity.directory import Directory
from gateway.model import Endpoint, Identity, User
from gateway.response import xmlcall
from gateway.upstream.bodies import FILE, RequestBody

NO_BODY_METHODS = ("GET", "HEAD", "DELETE")


def check_request_body(
    endpoint: Endpoint,
    method: str,
    scope: str,
    identity: Identity,
    directory: Directory,
    references: Mapping[str, Reference],
    body: RequestBody,
) -> None:
    """Refuse a request whose body may not reach the CRM; returns quietly otherwise."""
    contract = endpoint.body
    if body.raw and contract is None and method in NO_BODY_METHODS:
        raise BadRequest("body-not-allowed", detail=f"{method} {endpoint.template} declares no body")
    # An XML body is a call (SOAP): the body says which operation the CRM runs, so for everyone.
    calls = xmlcall.calls(body, contract) if body.raw and contract and "xml" in contract.media else None
    if scope == "all":
        return
    if contract is None:
        if body.raw:
            raise Forbidden("body-undeclared", detail=f"{endpoint.operation} declares no request body")
        if endpoint.action == "create":
            _missing_owner(endpoint.resource.writes, endpoint)
        return
    if not body.raw:
        if endpoint.action == "create":
            _missing_owner(endpoint.resource.writes, endpoint)
        return
    if calls is not None:
        records = calls
    else:
        media, data = body.read(contract.media)
        records = [data] if media != "json" else _json_records(data, contract)
    writable = contract.writable_for(identity.roles)
    check = _ScopeCheck(endpoint, scope, identity.user, directory, references)
    for record in records:
        extra = sorted(k for k in record if k not in writable)
        if extra:
            raise Forbidden("field-not-writable", detail=f"{endpoint.operation}: {', '.join(extra)[:200]}")
        check.record(record, creating=endpoint.action == "create")


def _json_records(data: Any, contract: BodyContract) -> list[dict[str, Any]]:
    if contract.records == ("$",):
        if not isinstance(data, dict):
            raise BadRequest("body-unreadable", detail="a written record must be a JSON object")
        return [data]
    if not isinstance(data, dict):
        raise BadRequest("body-unreadable", detail="the body must be a JSON object")
    holders = {fieldpath.parse(text)[0][0] for text in contract.records if text != "$"}
    extra = sorted(k for k in data if k not in holders and k not in contract.writable)
    if extra:
        raise Forbidden("field-not-writable", detail=", ".join(extra)[:200])
    records: list[dict[str, Any]] = []
    for text in contract.records:
        found = list(fieldpath.values(data, fieldpath.parse(text)))
        if not found or any(not isinstance(r, dict) for r in found):
            raise BadRequest("body-unreadable", detail=f"no record object at {text!r}")
        records += found
    return records


def _missing_owner(writes: WriteContract, endpoint: Endpoint) -> None:
    if writes.missing_owner != "caller":
        raise Forbidden("owner-missing", detail=f"{endpoint.operation}: the record must name its owner")


class _ScopeCheck:
    def __init__(
        self,
        endpoint: Endpoint,
        scope: str,
        caller: User,
        directory: Directory,
        references: Mapping[str, Reference],
    ):
        self.endpoint = endpoint
        self.writes = endpoint.resource.writes
        self.scope = scope
        self.caller = caller
        self.directory = directory
        self.references = references
        if scope not in endpoint.resource.scope_fields:
            raise ObligationUnenforceable(detail=f"{endpoint.resource.name} has no {scope} scope field")
        self.within = _users_in_scope(caller, scope, directory.users.values())
        self.within_ids = frozenset(u.id for u in self.within)

    def record(self, record: dict[str, Any], *, creating: bool) -> None:
        named_person = False
        for key, value in record.items():
            spec = self.writes.kind_of(key)
            if isinstance(spec, PeopleField):
                named_person = True
                for person in self._people(key, value, spec):
                    if person.id not in self.within_ids:
                        raise Forbidden("write-out-of-scope", detail=f"{key} names {person.id}, outside {self.scope}")
            elif isinstance(spec, OrgField):
                allowed = {u.attribute(spec.level) for u in self.within}
                for org_value in self._org(key, value, spec):
                    if org_value not in allowed:
                        raise Forbidden("write-out-of-scope", detail=f"{key} names {spec.level} {org_value!r}")
        if creating and not named_person:  # as for a create without a body: the CRM must assign the caller
            _missing_owner(self.writes, self.endpoint)

    def _people(self, key: str, value: Any, spec: PeopleField) -> list[User]:
        items = _items(key, value)
        return [self._person(key, item, spec) for item in items]

    def _person(self, key: str, item: Any, spec: PeopleField) -> User:
        if isinstance(item, dict):
            found: set[str] = set()
            for k, v in item.items():
                attribute = spec.objects.get(k)
                if attribute is None:
                    raise _unresolvable(key, f"object key {k!r} is not declared")
                found |= self._lookup((attribute,), v, key)
        else:
            found = self._lookup(spec.ids, item, key)
        if len(found) != 1:
            raise _unresolvable(key, "names more than one person" if found else "names no one")
        user = self.directory.get(next(iter(found)))
        assert user is not None
        return user

    def _lookup(self, attributes: Iterable[str], value: Any, key: str) -> set[str]:
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise _unresolvable(key, f"a {type(value).__name__} value")
        text = str(value)
        return {u.id for u in self.directory.users.values() if any(u.attribute(a) == text for a in attributes)}

    def _org(self, key: str, value: Any, spec: OrgField) -> list[str]:
        out: list[str] = []
        for item in _items(key, value):
            parts = item if isinstance(item, dict) else {"id": item}
            resolved: set[str] = set()
            for k, v in parts.items():
                if k not in ("id", "name") or isinstance(v, bool) or not isinstance(v, (str, int)):
                    raise _unresolvable(key, f"object key {k!r}" if k not in ("id", "name") else "a non-text value")
                if k == "id" and spec.references is not None:
                    ref = self.references.get(spec.references)
                    if ref is None or str(v) not in ref.ids:
                        raise _unresolvable(key, f"{v!r} is not in references {spec.references!r}")
                    resolved.add(ref.ids[str(v)])
                else:
                    resolved.add(str(v))
            if len(resolved) != 1:
                raise _unresolvable(key, "id and name disagree")
            out.append(resolved.pop())
        return out


def _items(key: str, value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _unresolvable(key, "an empty list removes every owner")
    for item in items:
        if item is None or item is FILE or isinstance(item, list):
            raise _unresolvable(key, "null, a file or a nested list")
    return items


def _users_in_scope(caller: User, scope: str, users: Iterable[User]) -> list[User]:
    """The caller (``own``), or every user of the caller's team / department / region / branch."""
    if scope == "own":
        return [caller]
    attribute = scope
    mine = caller.attribute(attribute)
    if not mine:
        return []
    return [u for u in users if u.attribute(attribute) == mine]


def _unresolvable(key: str, why: str) -> Forbidden:
    return Forbidden("owner-unresolvable", detail=f"{key}: {why}")
