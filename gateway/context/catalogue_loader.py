"""Reading rules/operations.yaml into catalogue entries: the file's schema and every check.

gateway.context.catalogue.load_catalogue drives it: the resources first, then each endpoint (its
template, operation, records, format, contracts), then the lookups between them. Every problem is
collected as ``file:line:col`` (never raised one at a time); untyped path parameters are warnings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from gateway import fieldpath
from gateway.context import contracts
from gateway.context.routes import ANY, Router, Template, TemplateError
from gateway.declared import BodyContract
from gateway.model import ACTIONS, Endpoint, Resource, ScopeField
from gateway.rulefile import Document, RuleError, StrictModel, validation_errors

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_OPERATION = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$")
# Writes that touch existing records: the gateway must read the record first to check its scope.
_NEEDS_LOOKUP = ("update", "delete")


class _ScopeSpec(StrictModel):
    field: str
    identity: str
    member_of: Literal["team", "department", "region", "branch"] | None = None


class _AnyOfSpec(StrictModel):
    any_of: list[_ScopeSpec] = Field(min_length=1)


class _ResourceSpec(StrictModel):
    id_field: str = "id"
    scope: dict[contracts.ScopedLevel, _ScopeSpec | _AnyOfSpec] = Field(default_factory=dict)
    fields: list[str] | None = None
    aliases: dict[str, list[str]] = Field(default_factory=dict)
    case_insensitive: bool = False
    writes: contracts.WritesSpec = contracts.WritesSpec()


class _EndpointSpec(StrictModel):
    method: str
    path: str
    operation: str
    records: list[str]
    format: Literal["json", "csv", "xml", "ndjson"] = "json"
    lookup: str | None = None
    ids_from_body: str | None = None
    body: contracts.BodySpec | None = None
    query: dict[str, contracts.QuerySpec] | None = None
    related: list[contracts.RelatedSpec] = Field(default_factory=list)
    aggregates: dict[str, Literal["count", "withhold"] | contracts.SumSpec] = Field(default_factory=dict)
    metadata: list[str] = Field(default_factory=list)
    undeclared: Literal["drop", "refuse"] = "drop"
    max_records: contracts.MaxRecordsSpec | None = None
    columns: dict[str, contracts.ColumnSpec | str] = Field(default_factory=dict)
    csv_scope: dict[contracts.ScopedLevel, contracts.CsvScopeSpec] = Field(default_factory=dict)


class FileSpec(StrictModel):
    format: str
    patterns: dict[str, str] = Field(
        default_factory=dict
    )  # name -> regular expression a path parameter may be typed with
    trailing_slash: Literal["exact", "either"] = "exact"
    references: dict[str, contracts.ReferencesSpec] = Field(default_factory=dict)
    resources: dict[str, Any]
    endpoints: list[Any]


def _loose(template: Template) -> tuple[str, ...]:
    """Literals only, parameters as blanks: to tell "wrong parameter name" from "no such GET"."""
    return tuple(value if kind == "lit" else "{}" for kind, value in template.segments)


class Loader:
    def __init__(self, doc: Document, references: set[str], router: Router[Endpoint]):
        self.doc = doc
        self.router = router
        self.errors: list[RuleError] = []
        self.warnings: list[RuleError] = []
        self.file = Path(doc.file).name
        self.references = references or set()

    def problems(self, found: list[contracts.Problem]) -> None:
        for path, message in found:
            self.err(path, message)

    def err(self, path: tuple[Any, ...], message: str) -> None:
        self.errors.append(self.doc.error(path, message))

    def warn(self, path: tuple[Any, ...], message: str) -> None:
        self.warnings.append(self.doc.error(path, f"warning: {message}"))

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
            self.errors += validation_errors(self.doc, exc, where)
            return None
        self._field_path(where + ("id_field",), spec.id_field, "id_field")
        fields: dict[str, tuple[ScopeField, ...]] = {}
        for level, scope in spec.scope.items():
            alternatives = scope.any_of if isinstance(scope, _AnyOfSpec) else [scope]
            fields[level] = tuple(
                self._scope_field(where + ("scope", level), level, alt, i if len(alternatives) > 1 else None)
                for i, alt in enumerate(alternatives)
            )
        problems: list[contracts.Problem] = []
        writes = contracts.writes(spec.writes, where + ("writes",), self.references, problems)
        self.problems(problems)
        fold = str.casefold if spec.case_insensitive else str
        return Resource(
            name=name,
            id_field=spec.id_field,
            scope_fields=fields,
            fields=frozenset(fold(f) for f in spec.fields) if spec.fields is not None else None,
            aliases={field: tuple(names) for field, names in spec.aliases.items()},
            case_insensitive=spec.case_insensitive,
            writes=writes,
        )

    def _scope_field(self, where: tuple[Any, ...], level: str, spec: _ScopeSpec, i: int | None) -> ScopeField:
        at = where + (("any_of", i) if i is not None else ())
        self._field_path(at + ("field",), spec.field, f"scope {level} field")
        if not _NAME.match(spec.identity):
            self.err(at + ("identity",), f"bad identity attribute {spec.identity!r}")
        if spec.member_of is not None and level == "own":
            self.err(at + ("member_of",), "member_of is for team / department / region / branch scope")
        return ScopeField(path=spec.field, identity=spec.identity, member_of=spec.member_of)

    def endpoint(self, i: int, raw: Any, resources: dict[str, Resource]) -> tuple[Endpoint, Template] | None:
        where: tuple[Any, ...] = ("endpoints", i)
        try:
            spec = _EndpointSpec.model_validate(raw)
        except ValidationError as exc:
            self.errors += validation_errors(self.doc, exc, where)
            return None
        before = len(self.errors)
        if spec.method == "HEAD":
            self.err(where + ("method",), "HEAD is decided as GET: declare the GET endpoint only")
        elif spec.method not in METHODS:
            self.err(where + ("method",), f"bad method {spec.method!r} (one of {', '.join(METHODS)}, upper case)")
        template = None
        try:
            template = self.router.parse(spec.path)
        except TemplateError as exc:
            self.err(where + ("path",), str(exc))
        else:
            for kind, name in template.segments:
                if kind == ANY:  # any segment: a literal sub-resource would be routed here
                    self.warn(
                        where + ("path",),
                        f"parameter {{{name}}} of {spec.path!r} is untyped: it also "
                        f"matches literal sub-resources; type it ({{{name}:uuid}}, :int, :slug or a pattern)",
                    )
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
        if spec.format == "ndjson" and spec.records not in ([], ["$"]):  # streamed: one record a line
            self.err(where + ("records",), 'an ndjson endpoint\'s records are ["$"] (every line) or []')
        if spec.format == "xml" and any(r == "$" or r.split(".")[0].endswith("[]") for r in spec.records):
            self.err(
                where + ("records",), 'xml records name elements from the one root element, e.g. "response.lead[]"'
            )
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
            operation=spec.operation,
            resource=resource,
            action=action,
            method=spec.method,
            template=spec.path,
            records=tuple(spec.records),
            format=spec.format,
            lookup=spec.lookup,
            ids_from_body=spec.ids_from_body,
            source=f"{self.file}:{line}",
            body=body,
            query=query,
            answer=answer,
            csv_columns=contracts.columns(spec.columns),
            csv_scope=contracts.csv_scope(spec.csv_scope),
        )
        return endpoint, template

    def _check_scope_keys(self, where: tuple[Any, ...], body: BodyContract, resource: Resource) -> None:
        """A writable key that decides a scope level must be declared as people or org: a body key
        the gateway does not resolve could move a record out of the writer's scope unseen."""
        keys = set(body.writable).union(*body.writable_by_role.values())
        for level, field in ((lv, f) for lv, fs in resource.scope_fields.items() for f in fs):
            try:
                top = fieldpath.parse(field.path)[0][0]
            except (fieldpath.FieldPathError, IndexError):
                continue  # reported on the resource
            if top in keys and resource.writes.kind_of(top) is None:
                self.err(
                    where + ("writable",),
                    f"writable key {top!r} decides scope {level!r} of "
                    f"{resource.name!r}: declare it under resources.{resource.name}.writes (people or org)",
                )

    def _check_csv(self, where: tuple[Any, ...], spec: _EndpointSpec, resource: Resource | None) -> None:
        if spec.records not in ([], ["$"]):
            self.err(where + ("records",), 'a csv endpoint\'s records are ["$"] (every row) or []')
        if resource is None or not spec.records:
            return
        for level, field in ((lv, f) for lv, fs in resource.scope_fields.items() for f in fs):
            if level in spec.csv_scope:
                continue  # this answer names its own column for the level
            try:
                top = fieldpath.first_segment(fieldpath.parse(field.path))
            except fieldpath.FieldPathError:
                continue  # reported on the resource
            if top is None:
                self.err(
                    where + ("format",),
                    f"csv rows only have top-level columns, but scope "
                    f"{level!r} of {resource.name!r} uses {field.path!r}",
                )

    def check_lookup(
        self,
        i: int,
        endpoint: Endpoint,
        template: Template,
        gets: dict[str, tuple[Endpoint, Template]],
        quiet_if_missing: bool,
    ) -> None:
        where = ("endpoints", i, "lookup")
        try:
            lookup = self.router.parse(endpoint.lookup)
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
            self.err(
                where, f"lookup {endpoint.lookup!r} reads {target[0].resource.name!r}, not {endpoint.resource.name!r}"
            )
        wanted = set(template.params) if not endpoint.ids_from_body else None
        if wanted is not None and set(lookup.params) != wanted:
            self.err(where, f"lookup {endpoint.lookup!r} must use the same parameters as {endpoint.template!r}")
        if wanted is None and len(lookup.params) != 1:
            self.err(where, f"lookup {endpoint.lookup!r} must have exactly one parameter (the id from the body)")
