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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.context import contracts
from gateway.context.catalogue_loader import METHODS, FileSpec, Loader
from gateway.context.routes import Router, Template, TemplateError
from gateway.context.todos import find_todos
from gateway.model import Endpoint, Resource
from gateway.rulefile import RuleError, load_yaml, validation_errors

__all__ = ["METHODS", "Catalogue", "Reference", "load_catalogue"]


@dataclasses.dataclass(frozen=True, slots=True)
class Reference:
    """A reference map: the CRM's ids for one kind of directory value (teams, regions, ...)."""

    level: str
    ids: Mapping[str, str]


class Catalogue:
    """The loaded catalogue: resources, endpoints and a router from (method, path) to an endpoint."""

    def __init__(
        self,
        resources: Mapping[str, Resource],
        endpoints: tuple[Endpoint, ...],
        router: Router[Endpoint],
        references: Mapping[str, Reference] | None = None,
    ):
        self.resources: dict[str, Resource] = dict(resources)
        # name -> CRM ids standing for directory values (a team's CRM id -> "east")
        self.references: dict[str, Reference] = dict(references or {})
        self.warnings: list[RuleError] = []  # shown by ``crmgw rules check``; they do not stop loading
        self.endpoints = endpoints
        self.operations: dict[str, Resource] = {e.operation: e.resource for e in endpoints}
        self._router: Router[Endpoint] = router
        self._by_key: dict[tuple[str, str], Endpoint] = {}
        # gateway.context.build: (method, raw target) -> what it normalises and maps to (bounded);
        # owned by this catalogue, so a rules reload starts from an empty one
        self.targets: dict[tuple[str, str], Any] = {}
        self._by_operation: dict[tuple[str, str], Endpoint] = {}
        for e in endpoints:
            self._by_key.setdefault((e.method, router.parse(e.template).key), e)
            self._by_operation.setdefault((e.operation, e.method), e)

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        """The endpoint a normalised path maps to, with its path parameters; None when unknown."""
        return self._router.match("GET" if method == "HEAD" else method, path)

    def find(self, method: str, template: str) -> Endpoint | None:
        """The endpoint declared with this template (parameter types ignored: ``{id}`` = ``{id:int}``)."""
        try:
            key = self._router.parse(template).key
        except TemplateError:
            return None
        return self._by_key.get(("GET" if method == "HEAD" else method, key))

    def parse_template(self, text: str) -> Template:
        """A path template with this catalogue's named patterns (e.g. a lookup template)."""
        return self._router.parse(text)

    def endpoint_for(self, operation: str, method: str) -> Endpoint | None:
        """The first declared endpoint performing ``operation`` with ``method`` (for tests/explain)."""
        return self._by_operation.get((operation, "GET" if method == "HEAD" else method))

    def lookup_for(self, endpoint: Endpoint) -> Endpoint | None:
        """The GET endpoint that reads the record a write endpoint touches."""
        return self.find("GET", endpoint.lookup) if endpoint.lookup else None


def load_catalogue(path: Path, display: str | None = None) -> tuple[Catalogue | None, list[RuleError]]:
    """Load and check operations.yaml; returns (Catalogue or None, every problem found)."""
    doc, errors = load_yaml(Path(path), display)
    if doc is None:
        return None, errors
    todos = find_todos(doc)  # a draft (crmgw catalogue draft) is not a catalogue until its TODOs are done
    if todos:
        return None, errors + todos
    try:
        top = FileSpec.model_validate(doc.data)
    except ValidationError as exc:
        return None, errors + validation_errors(doc, exc)
    problems: list[contracts.Problem] = []
    patterns = contracts.patterns(top.patterns, problems)
    router: Router[Endpoint] = Router(patterns, top.trailing_slash)
    loader = Loader(doc, set(top.references), router)
    loader.problems(problems)
    references = {name: Reference(ref.level, dict(ref.ids)) for name, ref in top.references.items()}
    resources: dict[str, Resource] = {}
    for name, raw in top.resources.items():
        resource = loader.resource(name, raw)
        if resource is not None:
            resources[name] = resource
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
            loader.err(
                ("endpoints", i, "path"),
                f"{endpoint.method} {endpoint.template} matches the same "
                f"requests as {clash.method} {clash.template} ({clash.source}): ambiguous catalogue",
            )
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
    catalogue = Catalogue(resources, tuple(e for _, e, _ in built), router, references)
    catalogue.warnings = sorted(loader.warnings)
    return catalogue, []
