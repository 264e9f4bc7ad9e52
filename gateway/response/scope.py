"""Data scope: is a record one the caller may see?

A rule grants a scope level (``own``, ``team``, ``department``, ``region``, ``branch`` or ``all``);
the catalogue's ``Resource.scope_fields[level]`` says which record field decides it and which identity
attribute it is compared with (``owner_id`` vs ``user``, ``assigned_to[].email`` vs ``email``).

A record is in scope when ANY value at the field path equals the identity's attribute. Values are
compared as strings because the CRM may send owner ids as JSON numbers; only strings and integers can
match (null, booleans, floats, objects never do). Everything missing fails closed: no field, no
identity, no attribute or an empty one means out of scope. A level the resource has no field for is
not "everything": it makes the obligation unenforceable.
"""

from __future__ import annotations

from typing import Any, Callable

from gateway import fieldpath
from gateway.errors import ObligationUnenforceable
from gateway.model import Identity, Resource, ScopeField
from gateway.response.paths import compiled

InScope = Callable[[Any], bool]


def scope_field(resource: Resource, scope: str) -> ScopeField | None:
    """The field deciding ``scope`` on ``resource``; None for ``all`` (no filtering)."""
    if scope == "all":
        return None
    field = resource.scope_fields.get(scope)
    if field is None:
        raise ObligationUnenforceable(detail=f"resource {resource.name!r} has no scope field for {scope!r}")
    return field


def scope_test(resource: Resource, scope: str, identity: Identity | None) -> InScope | None:
    """A compiled predicate for one request's records, or None when every record is in scope.

    The identity attribute is looked up once here, not once per record.
    """
    field = scope_field(resource, scope)
    if field is None:
        return None
    path = compiled(field.path)
    wanted = identity.user.attribute(field.identity) if identity is not None else None
    if not wanted:
        return _nothing
    if len(path) == 1 and not path[0][1]:  # the common case: a top-level field such as owner_id
        key = path[0][0]

        def top_level(record: Any) -> bool:
            return type(record) is dict and _matches(record.get(key), wanted)

        return top_level

    def nested(record: Any) -> bool:
        return any(_matches(value, wanted) for value in fieldpath.values(record, path))

    return nested


def record_in_scope(record: dict, resource: Resource, scope: str, identity: Identity) -> bool:
    """One-off check (e.g. a record fetched before an update); filters use :func:`scope_test`."""
    test = scope_test(resource, scope, identity)
    return True if test is None else test(record)


def _matches(value: Any, wanted: str) -> bool:
    if type(value) is str:
        return value == wanted
    if type(value) is int:  # bool is a subclass of int but not ``type(...) is int``
        return str(value) == wanted
    return False


def _nothing(record: Any) -> bool:
    return False
