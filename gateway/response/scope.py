"""Data scope: is a record one the caller may see?

A rule grants a scope level (``own``, ``team``, ``department``, ``region``, ``branch`` or ``all``);
the catalogue's ``Resource.scope_fields[level]`` lists the record fields that decide it, each with
the identity attribute it is compared with. A record is in scope when ANY of those fields matches:
``own`` may be "created_by is me OR I am among assigned_to", whatever shape each field has.

Two kinds of field:

* a tag: ANY value at the field path equals the caller's attribute (``teams[].name`` = ``team``);
* membership (``member_of``): the field names people (``assigned_to[].id`` by ``crm_profile_id``),
  and the record is in scope when one of them belongs to the caller's unit (their ``team`` is the
  caller's), looked up in the users directory. So a manager sees the records owned by members of
  his team even when no team tag is on them.

Values are compared as strings because the CRM may send ids as JSON numbers; only strings and
integers can match (null, booleans, floats, objects never do). Everything missing fails closed: no
field, no identity, no attribute or an empty one, no directory for a membership field means no
match. A level the resource has no field for is not "everything": it makes the obligation
unenforceable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway import fieldpath
from gateway.errors import ObligationUnenforceable
from gateway.model import Identity, Resource, ScopeField
from gateway.response.paths import compiled

InScope = Callable[[Any], bool]


def scope_fields(resource: Resource, scope: str) -> tuple[ScopeField, ...] | None:
    """The fields deciding ``scope`` on ``resource``; None for ``all`` (no filtering)."""
    if scope == "all":
        return None
    fields = resource.scope_fields.get(scope)
    if not fields:
        raise ObligationUnenforceable(detail=f"resource {resource.name!r} has no scope field for {scope!r}")
    return fields


def scope_test(resource: Resource, scope: str, identity: Identity | None, directory: Any = None) -> InScope | None:
    """A compiled predicate for one request's records, or None when every record is in scope.

    The identity attribute (and, for membership fields, the set of the unit's members) is looked up
    once here, not once per record. ``directory``: the users directory (gateway.identity.directory).
    """
    fields = scope_fields(resource, scope)
    if fields is None:
        return None
    tests = [test for field in fields if (test := _field_test(field, identity, directory)) is not None]
    if not tests:
        return _nothing
    if len(tests) == 1:
        return tests[0]
    return lambda record: any(test(record) for test in tests)


def record_in_scope(
    record: dict[str, Any], resource: Resource, scope: str, identity: Identity, directory: Any = None
) -> bool:
    """One-off check (e.g. a record fetched before an update); filters use :func:`scope_test`."""
    test = scope_test(resource, scope, identity, directory)
    return True if test is None else test(record)


def wanted_values(field: ScopeField, identity: Identity | None, directory: Any = None) -> frozenset[str]:
    """The values of ``field`` that put a record in the caller's scope (empty: none do)."""
    if identity is None:
        return frozenset()
    if field.member_of is None:
        mine = identity.user.attribute(field.identity)
        return frozenset((mine,)) if mine else frozenset()
    unit = identity.user.attribute(field.member_of)
    if not unit or directory is None:
        return frozenset()
    return frozenset(
        value
        for user in directory.users.values()
        if user.attribute(field.member_of) == unit and (value := user.attribute(field.identity))
    )


def _field_test(field: ScopeField, identity: Identity | None, directory: Any) -> InScope | None:
    wanted = wanted_values(field, identity, directory)
    if not wanted:
        return None
    path = compiled(field.path)
    if len(path) == 1 and not path[0][1]:  # the common case: a top-level field such as owner_id
        key = path[0][0]
        if len(wanted) == 1:
            (one,) = wanted

            def top_level(record: Any) -> bool:
                return type(record) is dict and _matches(record.get(key), one)

            return top_level

        def top_level_any(record: Any) -> bool:
            return type(record) is dict and _matches_any(record.get(key), wanted)

        return top_level_any

    def nested(record: Any) -> bool:
        return any(_matches_any(value, wanted) for value in fieldpath.values(record, path))

    return nested


def _matches(value: Any, wanted: str) -> bool:
    if type(value) is str:
        return value == wanted
    if type(value) is int:  # bool is a subclass of int but not ``type(...) is int``
        return str(value) == wanted
    return False


def _matches_any(value: Any, wanted: frozenset[str]) -> bool:
    if type(value) is str:
        return value in wanted
    if type(value) is int:
        return str(value) in wanted
    return False


def _nothing(record: Any) -> bool:
    return False
