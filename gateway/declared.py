"""What the catalogue declares about an endpoint beyond its route: the contracts a restricted caller
is held to. Immutable values, compiled once by the catalogue loader; no I/O.

    WriteContract   how a resource's written records name their owners and teams
                    (people / org fields in every spelling the CRM accepts, reference maps, what the
                    CRM does when no owner is given)
    BodyContract    what one write endpoint accepts: media types, where the records are, which keys
                    may be written (per role, optionally)
    QueryParam      one declared query parameter (type and bounds)
    AnswerContract  everything an answer may carry besides its records: related / sideloaded records
                    (each filtered as its own resource), aggregates (recomputed or withheld), safe
                    metadata; what to do with the rest; how many records may go out at once
    CsvColumn       a CSV header as the filter should read it (field name, multi-value separator)

"Restricted" means a caller whose data scope is not ``all`` or who has any mask: for such a caller
whatever the contract does not declare is refused (requests) or dropped (answers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

MEDIA = ("json", "form", "multipart", "xml")
ORG_LEVELS = ("team", "department", "region", "branch")


@dataclasses.dataclass(frozen=True, slots=True)
class PeopleField:
    """Body keys that name users (owners, assignees): a bare value, an object, or a list of either.

    ``ids``: the identity attributes a bare string/number may be (``crm_profile_id``, ``email``...);
    ``objects``: an object's keys and the identity attribute each holds (``{id: crm_profile_id}``).
    """

    fields: tuple[str, ...]
    ids: tuple[str, ...]
    objects: Mapping[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class OrgField:
    """Body keys that name a team / department / region / branch directly.

    A bare value or an object's ``id`` is looked up in ``references`` (CRM id -> directory value)
    when one is named, else taken as the directory value itself; an object's ``name`` always is.
    """

    fields: tuple[str, ...]
    level: str
    references: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class WriteContract:
    people: tuple[PeopleField, ...] = ()
    org: tuple[OrgField, ...] = ()
    # "caller": on create, a record without an owner is assigned to the caller by the CRM, told who
    # the caller is by ``via`` (the identity header the gateway sets). None: the owner is required.
    missing_owner: Literal["caller"] | None = None
    missing_owner_via: str | None = None

    def kind_of(self, key: str) -> PeopleField | OrgField | None:
        specs: tuple[PeopleField | OrgField, ...] = (*self.people, *self.org)
        for spec in specs:
            if key in spec.fields:
                return spec
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class BodyContract:
    media: tuple[str, ...] = ("json",)
    records: tuple[str, ...] = ("$",)  # field paths of the written records in a JSON body
    writable: frozenset[str] = frozenset()
    writable_by_role: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    def writable_for(self, roles: frozenset[str]) -> frozenset[str]:
        """The keys a caller may write: the union over their roles that are listed, else ``writable``."""
        listed = [keys for role, keys in self.writable_by_role.items() if role in roles]
        return frozenset().union(*listed) if listed else self.writable


@dataclasses.dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    type: Literal["int", "string", "bool", "enum"] = "string"
    min: int | None = None
    max: int | None = None
    max_length: int = 200
    values: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Related:
    """Records of another resource inside the answer (sideloaded, nested): filtered as that resource."""

    path: str
    resource: Any  # the gateway.model.Resource the records belong to


@dataclasses.dataclass(frozen=True, slots=True)
class Aggregate:
    """A number the CRM computed over records: ``count`` (recomputed), ``sum`` of a field, ``withhold``."""

    path: str
    op: Literal["count", "sum", "withhold"]
    field: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MaxRecords:
    limit: int
    over: Literal["refuse", "truncate"] = "refuse"


@dataclasses.dataclass(frozen=True, slots=True)
class AnswerContract:
    related: tuple[Related, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()
    metadata: tuple[str, ...] = ()
    undeclared: Literal["drop", "refuse"] = "drop"
    max_records: MaxRecords | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CsvColumn:
    field: str  # the field name masks, scope and the resource's field list know it by
    split: str | None = None  # a cell holding several values ("a@x; b@x")
