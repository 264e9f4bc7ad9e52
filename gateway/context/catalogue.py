"""The catalogue of CRM operations (rules/operations.yaml): which endpoint performs which operation.

Rules speak of operations (``customers.view``), never of URLs; this file is the only place that
knows the CRM's routes. Each endpoint says explicitly where the records are in its response
(``records``; an empty list means "none"), so the response filter never guesses, and write
endpoints name the GET ``lookup`` used to fetch the record they touch before it is changed::

    format: crmgw.rules/v1
    resources:
      customers:
        id_field: id
        scope:
          own: {field: owner_id, identity: user}
          team: {field: team, identity: team}
    endpoints:
      - {method: GET, path: /api/customers, operation: customers.list, records: ["data[]"]}
      - {method: GET, path: "/api/customers/{id:int}", operation: customers.view, records: ["$"]}
      - {method: PUT, path: "/api/customers/{id:int}", operation: customers.update, records: ["$"],
         lookup: "/api/customers/{id}"}

HEAD is decided as GET (it is not declared). An ambiguous catalogue -- two entries matching the
same requests -- is an error, like every other problem, reported as ``file:line:col``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway import fieldpath
from gateway.context import contracts
from gateway.context.routes import Router, Template, TemplateError, parse_template
from gateway.model import ACTIONS, Endpoint, Resource, ScopeField
from gateway.rulefile import Document, RuleError, load_yaml

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_OPERATION = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$")
# Writes that touch existing records: the gateway must read the record first to check its scope.
_NEEDS_LOOKUP = ("update", "delete")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ScopeSpec(_Strict):
    field: str
    identity: str


class _ResourceSpec(_Strict):
    id_field: str = "id"
    scope: dict[Literal["own", "team", "department", "region", "branch"], _ScopeSpec] = {}
    fields: list[str] | None = None
    aliases: dict[str, list[str]] = {}
    case_insensitive: bool = False
    writes: contracts.WritesSpec = contracts.WritesSpec()


class _EndpointSpec(_Strict):
    method: str
    path: str
    operation: str
    records: list[str]
    format: Literal["json", "csv"] = "json"
    lookup: str | None = None
    ids_from_body: str | None = None
    body: contracts.BodySpec | None = None
    query: dict[str, contracts.QuerySpec] | None = None
    related: list[contracts.RelatedSpec] = []
    aggregates: dict[str, Literal["count", "withhold"] | contracts.SumSpec] = {}
    metadata: list[str] = []
    undeclared: Literal["drop", "refuse"] = "drop"
    max_records: contracts.MaxRecordsSpec | None = None
    columns: dict[str, contracts.ColumnSpec | str] = {}
    csv_scope: dict[Literal["own", "team", "department", "region", "branch"], contracts.CsvScopeSpec] = {}


class _FileSpec(_Strict):
    format: str
    references: dict[str, contracts.ReferencesSpec] = {}
    resources: dict[str, Any]
    endpoints: list[Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Reference:
    """A reference map: the CRM's ids for one kind of directory value (teams, regions, ...)."""

    level: str
    ids: Mapping[str, str]


class Catalogue:
    """The loaded catalogue: resources, endpoints and a router from (method, path) to an endpoint."""

    def __init__(
        self, resources: Mapping[str, Resource], endpoints: tuple[Endpoint, ...], router: Router,
        references: Mapping[str, Reference] | None = None,
    ):
        self.resources: dict[str, Resource] = dict(resources)
        # name -> CRM ids standing for directory values (a team's CRM id -> "east")
        self.references: dict[str, Reference] = dict(references or {})
        self.endpoints = endpoints
        self.operations: dict[str, Resource] = {e.operation: e.resource for e in endpoints}
        self._router: Router[Endpoint] = router
        self._by_key: dict[tuple[str, str], Endpoint] = {}
        self._by_operation: dict[tuple[str, str], Endpoint] = {}
        for e in endpoints:
            self._by_key.setdefault((e.method, parse_template(e.template).key), e)
            self._by_operation.setdefault((e.operation, e.method), e)

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        """The endpoint a normalised path maps to, with its path parameters; None when unknown."""
        return self._router.match("GET" if method == "HEAD" else method, path)

    def find(self, method: str, template: str) -> Endpoint | None:
        """The endpoint declared with this template (parameter types ignored: ``{id}`` = ``{id:int}``)."""
        try:
            key = parse_template(template).key
        except TemplateError:
            return None
        return self._by_key.get(("GET" if method == "HEAD" else method, key))

    def endpoint_for(self, operation: str, method: str) -> Endpoint | None:
        """The first declared endpoint performing ``operation`` with ``method`` (for tests/explain)."""
        return self._by_operation.get((operation, "GET" if method == "HEAD" else method))

    def lookup_for(self, endpoint: Endpoint) -> Endpoint | None:
        """The GET endpoint that reads the record a write endpoint touches."""
        return self.find("GET", endpoint.lookup) if endpoint.lookup else None


def _loose(template: Template) -> tuple[str, ...]:
    """Literals only, parameters as blanks: to tell "wrong parameter name" from "no such GET"."""
    return tuple(value if kind == "lit" else "{}" for kind, value in template.segments)


def _pydantic_errors(doc: Document, prefix: tuple[Any, ...], exc: ValidationError) -> list[RuleError]:
    errors = []
    for item in exc.errors(include_url=False):
        loc = prefix + tuple(item["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        msg = f"unknown key {loc[-1]!r}" if item["type"] == "extra_forbidden" else item["msg"]
        errors.append(doc.error(loc, f"{where}: {msg}"))
    return errors


class _Loader:
    def __init__(self, doc: Document, references: set[str] | None = None):
        self.doc = doc
        self.errors: list[RuleError] = []
        self.file = Path(doc.file).name
        self.references = references or set()

    def problems(self, found: list[contracts.Problem]) -> None:
        for path, message in found:
            self.err(path, message)

    def err(self, path: tuple[Any, ...], message: str) -> None:
        self.errors.append(self.doc.error(path, message))

    def _field_path(self, where: tuple[Any, ...], text: str, what: str) -> fieldpath.Path | None:
        try:
            return fieldpath.parse(text)
        except fieldpath.FieldPathError as exc:
            self.err(where, f"{what}: {exc}")
            return None

    def resource(self, name: str, raw: Any) -> Resource | None:
        where = ("resources", name)
        if not _NAME.match(name):
            self.err(where, f"resource name {name!r} must be lower case letters, digits and '_'")
        try:
            spec = _ResourceSpec.model_validate(raw)
        except ValidationError as exc:
            self.errors += _pydantic_errors(self.doc, where, exc)
            return None
        self._field_path(where + ("id_field",), spec.id_field, "id_field")
        fields = {}
        for level, scope in spec.scope.items():
            self._field_path(where + ("scope", level, "field"), scope.field, f"scope {level} field")
            if not _NAME.match(scope.identity):
                self.err(where + ("scope", level, "identity"), f"bad identity attribute {scope.identity!r}")
            fields[level] = ScopeField(path=scope.field, identity=scope.identity)
        problems: list[contracts.Problem] = []
        writes = contracts.writes(spec.writes, where + ("writes",), self.references, problems)
        self.problems(problems)
        fold = str.casefold if spec.case_insensitive else str
        return Resource(
            name=name, id_field=spec.id_field, scope_fields=fields,
            fields=frozenset(fold(f) for f in spec.fields) if spec.fields is not None else None,
            aliases={field: tuple(names) for field, names in spec.aliases.items()},
            case_insensitive=spec.case_insensitive, writes=writes,
        )

    def endpoint(self, i: int, raw: Any, resources: dict[str, Resource]) -> tuple[Endpoint, Template] | None:
        where: tuple[Any, ...] = ("endpoints", i)
        try:
            spec = _EndpointSpec.model_validate(raw)
        except ValidationError as exc:
            self.errors += _pydantic_errors(self.doc, where, exc)
            return None
        before = len(self.errors)
        if spec.method == "HEAD":
            self.err(where + ("method",), "HEAD is decided as GET: declare the GET endpoint only")
        elif spec.method not in METHODS:
            self.err(where + ("method",), f"bad method {spec.method!r} (one of {', '.join(METHODS)}, upper case)")
        template = None
        try:
            template = parse_template(spec.path)
        except TemplateError as exc:
            self.err(where + ("path",), str(exc))
        resource, action = None, ""
        m = _OPERATION.match(spec.operation)
        if not m:
            self.err(where + ("operation",), f"operation {spec.operation!r} must be '<resource>.<action>'")
        else:
            resource = resources.get(m.group(1))
            action = m.group(2)
            if m.group(1) not in resources:
                self.err(where + ("operation",), f"unknown resource {m.group(1)!r} in {spec.operation!r}")
            if action not in ACTIONS:
                self.err(where + ("operation",), f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
        for j, records in enumerate(spec.records):
            self._field_path(where + ("records", j), records, "records")
        if spec.ids_from_body is not None:
            self._field_path(where + ("ids_from_body",), spec.ids_from_body, "ids_from_body")
        if spec.format == "csv":
            self._check_csv(where, spec, resource)
        if template is not None and action in _NEEDS_LOOKUP and spec.lookup is None:
            if template.params or spec.ids_from_body:
                self.err(where, f"{action} endpoint needs 'lookup': the GET template that reads the record")
            else:
                self.err(where, f"{action} endpoint must name its records: a path parameter or ids_from_body")
        problems: list[contracts.Problem] = []
        body = contracts.body(spec.body, where + ("body",), problems) if spec.body is not None else None
        query = contracts.query(spec.query, where + ("query",), problems) if spec.query is not None else None
        answer = contracts.answer(spec, where, resources, problems)
        if body is not None and resource is not None:
            self._check_scope_keys(where + ("body",), body, resource)
        if spec.format != "csv" and (spec.columns or spec.csv_scope):
            problems.append((where + ("columns",), "'columns' and 'csv_scope' are for csv endpoints"))
        self.problems(problems)
        if len(self.errors) > before or template is None or resource is None:
            return None
        line, _ = self.doc.loc(where)
        endpoint = Endpoint(
            operation=spec.operation, resource=resource, action=action, method=spec.method,
            template=spec.path, records=tuple(spec.records), format=spec.format, lookup=spec.lookup,
            ids_from_body=spec.ids_from_body, source=f"{self.file}:{line}",
            body=body, query=query, answer=answer,
            csv_columns=contracts.columns(spec.columns), csv_scope=contracts.csv_scope(spec.csv_scope),
        )
        return endpoint, template

    def _check_scope_keys(self, where: tuple[Any, ...], body, resource: Resource) -> None:
        """A writable key that decides a scope level must be declared as people or org: a body key
        the gateway does not resolve could move a record out of the writer's scope unseen."""
        keys = set(body.writable).union(*body.writable_by_role.values())
        for level, scope in resource.scope_fields.items():
            try:
                top = fieldpath.parse(scope.path)[0][0]
            except (fieldpath.FieldPathError, IndexError):
                continue  # reported on the resource
            if top in keys and resource.writes.kind_of(top) is None:
                self.err(where + ("writable",), f"writable key {top!r} decides scope {level!r} of "
                         f"{resource.name!r}: declare it under resources.{resource.name}.writes (people or org)")

    def _check_csv(self, where: tuple[Any, ...], spec: _EndpointSpec, resource: Resource | None) -> None:
        if spec.records not in ([], ["$"]):
            self.err(where + ("records",), "a csv endpoint's records are [\"$\"] (every row) or []")
        if resource is None or not spec.records:
            return
        for level, scope in resource.scope_fields.items():
            if level in spec.csv_scope:
                continue  # this answer names its own column for the level
            try:
                top = fieldpath.first_segment(fieldpath.parse(scope.path))
            except fieldpath.FieldPathError:
                continue  # reported on the resource
            if top is None:
                self.err(where + ("format",), f"csv rows only have top-level columns, but scope "
                         f"{level!r} of {resource.name!r} uses {scope.path!r}")

    def check_lookup(
        self, i: int, endpoint: Endpoint, template: Template,
        gets: dict[str, tuple[Endpoint, Template]], quiet_if_missing: bool,
    ) -> None:
        where = ("endpoints", i, "lookup")
        try:
            lookup = parse_template(endpoint.lookup)
        except TemplateError as exc:
            self.err(where, f"lookup: {exc}")
            return
        target = gets.get(lookup.key)
        if target is None:
            loose = {_loose(t) for _, t in gets.values()}
            if _loose(lookup) in loose:
                self.err(where, f"lookup {endpoint.lookup!r} must use the parameter names of the GET template")
            elif not quiet_if_missing:  # else the GET entry may be one of the broken ones
                self.err(where, f"lookup {endpoint.lookup!r} is not a GET endpoint of the catalogue")
            return
        if target[0].resource.name != endpoint.resource.name:
            self.err(where, f"lookup {endpoint.lookup!r} reads {target[0].resource.name!r}, not {endpoint.resource.name!r}")
        wanted = set(template.params) if not endpoint.ids_from_body else None
        if wanted is not None and set(lookup.params) != wanted:
            self.err(where, f"lookup {endpoint.lookup!r} must use the same parameters as {endpoint.template!r}")
        if wanted is None and len(lookup.params) != 1:
            self.err(where, f"lookup {endpoint.lookup!r} must have exactly one parameter (the id from the body)")


def load_catalogue(path: Path, display: str | None = None) -> tuple[Catalogue | None, list[RuleError]]:
    """Load and check operations.yaml; returns (Catalogue or None, every problem found)."""
    doc, errors = load_yaml(Path(path), display)
    if doc is None:
        return None, errors
    try:
        top = _FileSpec.model_validate(doc.data)
    except ValidationError as exc:
        return None, errors + _pydantic_errors(doc, (), exc)
    loader = _Loader(doc, set(top.references))
    references = {name: Reference(ref.level, dict(ref.ids)) for name, ref in top.references.items()}
    resources: dict[str, Resource] = {}
    for name, raw in top.resources.items():
        resource = loader.resource(name, raw)
        if resource is not None:
            resources[name] = resource
    router: Router[Endpoint] = Router()
    built: list[tuple[int, Endpoint, Template]] = []
    broken = False  # lookups pointing at a broken entry would only repeat its error
    for i, raw in enumerate(top.endpoints):
        result = loader.endpoint(i, raw, resources)
        if result is None:
            broken = True
            continue
        endpoint, template = result
        clash = router.add(endpoint.method, template, endpoint)
        if clash is not None:
            loader.err(("endpoints", i, "path"), f"{endpoint.method} {endpoint.template} matches the same "
                       f"requests as {clash.method} {clash.template} ({clash.source}): ambiguous catalogue")
            continue
        built.append((i, endpoint, template))
    gets = {t.key: (e, t) for _, e, t in built if e.method == "GET"}
    for i, endpoint, template in built:
        if endpoint.lookup is not None:
            loader.check_lookup(i, endpoint, template, gets, quiet_if_missing=broken)
    if not built and not loader.errors:
        loader.err(("endpoints",), "the catalogue declares no endpoints")
    errors += loader.errors
    if errors:
        return None, sorted(errors)
    return Catalogue(resources, tuple(e for _, e, _ in built), router, references), []
