"""The catalogue: loading operations.yaml strictly and matching requests to operations."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.context.catalogue import Catalogue, load_catalogue
from gateway.model import ACTIONS

RULES = Path(__file__).resolve().parents[2] / "rules" / "operations.yaml"

HEADER = """\
format: crmgw.rules/v1
resources:
  customers:
    scope:
      own: {field: owner_id, identity: user}
  deals:
    scope:
      own: {field: "assigned_to[].email", identity: email}
endpoints:
"""


def load(tmp_path: Path, endpoints: str, header: str = HEADER):
    f = tmp_path / "operations.yaml"
    f.write_text(header + textwrap.dedent(endpoints))
    return load_catalogue(f, "rules/operations.yaml")


def messages(errors) -> list[str]:
    return [str(e) for e in errors]


@pytest.fixture(scope="module")
def shipped() -> Catalogue:
    catalogue, errors = load_catalogue(RULES, "rules/operations.yaml")
    assert errors == []
    assert catalogue is not None
    return catalogue


def test_shipped_catalogue_loads_without_errors():
    catalogue, errors = load_catalogue(RULES, "rules/operations.yaml")
    assert messages(errors) == []
    assert catalogue is not None


MATCHES = [
    # (method, path, operation, params)
    ("GET", "/api/customers", "customers.list", {}),
    ("GET", "/api/customers/7", "customers.view", {"id": "7"}),
    ("HEAD", "/api/customers/7", "customers.view", {"id": "7"}),
    ("HEAD", "/api/customers", "customers.list", {}),
    ("POST", "/api/customers", "customers.create", {}),
    ("PUT", "/api/customers/7", "customers.update", {"id": "7"}),
    ("PATCH", "/api/customers/7", "customers.update", {"id": "7"}),
    ("DELETE", "/api/customers/7", "customers.delete", {"id": "7"}),
    ("POST", "/api/customers/bulk-delete", "customers.delete", {}),
    ("GET", "/api/customers/export.csv", "customers.export", {}),
    ("GET", "/api/customers/export.json", "customers.export", {}),
    ("POST", "/api/customers/import", "customers.import", {}),
    ("GET", "/api/contacts", "contacts.list", {}),
    ("GET", "/api/contacts/3", "contacts.view", {"id": "3"}),
    ("POST", "/api/contacts", "contacts.create", {}),
    ("PUT", "/api/contacts/3", "contacts.update", {"id": "3"}),
    ("PATCH", "/api/contacts/3", "contacts.update", {"id": "3"}),
    ("DELETE", "/api/contacts/3", "contacts.delete", {"id": "3"}),
    ("GET", "/api/deals", "deals.list", {}),
    ("GET", "/api/deals/9", "deals.view", {"id": "9"}),
    ("POST", "/api/deals", "deals.create", {}),
    ("PUT", "/api/deals/9", "deals.update", {"id": "9"}),
    ("PATCH", "/api/deals/9", "deals.update", {"id": "9"}),
    ("DELETE", "/api/deals/9", "deals.delete", {"id": "9"}),
    ("GET", "/api/admin/users", "admin.admin", {}),
    ("POST", "/api/admin/settings", "admin.admin", {}),
]


@pytest.mark.parametrize(("method", "path", "operation", "params"), MATCHES)
def test_shipped_catalogue_maps_every_demo_endpoint(shipped, method, path, operation, params):
    found = shipped.match(method, path)
    assert found is not None
    endpoint, got = found
    assert (endpoint.operation, got) == (operation, params)


UNKNOWN = [
    ("GET", "/api/customers/export.xml"),  # not an int id, not a literal
    ("GET", "/api/customers/"),  # trailing slash is another path
    ("GET", "/api/customers/7/notes"),
    ("GET", "/api/Customers"),  # literals are case-sensitive
    ("GET", "/api"),
    ("GET", "/health"),  # not proxied
    ("DELETE", "/api/customers"),
    ("POST", "/api/customers/7"),
    ("get", "/api/customers"),  # methods are case-sensitive
    ("OPTIONS", "/api/customers"),
    ("GET", "/api/customers/%37"),  # not canonical: normalise first
    ("GET", "api/customers"),
    ("GET", "/api/customers/-1"),
    ("GET", "/api/customers/\uff11"),  # a non-ASCII digit is not an int
]


@pytest.mark.parametrize(("method", "path"), UNKNOWN)
def test_unknown_routes_match_nothing(shipped, method, path):
    assert shipped.match(method, path) is None


def test_literal_segment_wins_over_parameter(tmp_path):
    catalogue, errors = load(
        tmp_path,
        """\
      - {method: GET, path: "/api/customers/{key}", operation: customers.view, records: ["$"]}
      - {method: GET, path: /api/customers/export.csv, operation: customers.export, format: csv, records: ["$"]}
    """,
    )
    assert errors == []
    assert catalogue.match("GET", "/api/customers/export.csv")[0].operation == "customers.export"
    assert catalogue.match("GET", "/api/customers/export.json")[1] == {"key": "export.json"}


def test_int_parameter_wins_over_untyped_parameter(tmp_path):
    catalogue, errors = load(
        tmp_path,
        """\
      - {method: GET, path: "/api/customers/{slug}", operation: customers.list, records: ["$"]}
      - {method: GET, path: "/api/customers/{id:int}", operation: customers.view, records: ["$"]}
    """,
    )
    assert errors == []
    assert catalogue.match("GET", "/api/customers/12")[0].operation == "customers.view"
    assert catalogue.match("GET", "/api/customers/x12")[0].operation == "customers.list"


def test_dead_end_literal_branch_falls_back_to_parameter(tmp_path):
    catalogue, errors = load(
        tmp_path,
        """\
      - {method: GET, path: "/api/customers/export/all", operation: customers.export, records: ["$"]}
      - {method: GET, path: "/api/customers/{id}", operation: customers.view, records: ["$"]}
    """,
    )
    assert errors == []
    assert catalogue.match("GET", "/api/customers/export")[1] == {"id": "export"}


def test_parameter_values_stay_percent_encoded(tmp_path):
    catalogue, _ = load(
        tmp_path,
        """\
      - {method: GET, path: "/api/customers/{id}", operation: customers.view, records: ["$"]}
    """,
    )
    assert catalogue.match("GET", "/api/customers/%C3%A9")[1] == {"id": "%C3%A9"}


def test_endpoint_carries_everything_the_later_stages_need(shipped):
    endpoint, _ = shipped.match("POST", "/api/customers/bulk-delete")
    assert endpoint.resource.name == "customers"
    assert endpoint.action == "delete"
    assert endpoint.records == ()
    assert endpoint.lookup == "/api/customers/{id}"
    assert endpoint.ids_from_body == "ids[]"
    assert endpoint.source.startswith("operations.yaml:")
    assert [f.path for f in endpoint.resource.scope_fields["own"]] == ["owner_id"]


def test_deals_records_and_owner_field(shipped):
    endpoint, _ = shipped.match("GET", "/api/deals")
    assert endpoint.records == ("open[]", "closed[]")
    (own,) = endpoint.resource.scope_fields["own"]
    assert (own.path, own.identity) == ("assigned_to[].email", "email")


def test_contacts_records_and_owner_field(shipped):
    assert shipped.match("GET", "/api/contacts")[0].records == ("results.items[]",)
    endpoint, _ = shipped.match("GET", "/api/contacts/1")
    assert endpoint.records == ("contact",)
    (own,) = endpoint.resource.scope_fields["own"]
    assert (own.path, own.identity) == ("owner.id", "user")


def test_csv_export_is_declared_as_csv(shipped):
    endpoint, _ = shipped.match("GET", "/api/customers/export.csv")
    assert (endpoint.format, endpoint.records) == ("csv", ("$",))


def test_operations_map_each_operation_to_its_resource(shipped):
    assert shipped.operations["deals.update"].name == "deals"
    assert set(shipped.resources) == {"customers", "contacts", "deals", "admin"}
    for operation in shipped.operations:
        assert operation.split(".")[1] in ACTIONS


def test_find_ignores_parameter_types(shipped):
    assert shipped.find("GET", "/api/customers/{id}").operation == "customers.view"
    assert shipped.find("GET", "/api/customers/{id:int}").operation == "customers.view"
    assert shipped.find("GET", "/api/nothing/{id}") is None
    assert shipped.find("GET", "not a template") is None


def test_lookup_for_returns_the_get_endpoint(shipped):
    update, _ = shipped.match("PUT", "/api/contacts/1")
    assert shipped.lookup_for(update).operation == "contacts.view"
    view, _ = shipped.match("GET", "/api/contacts/1")
    assert shipped.lookup_for(view) is None


def test_endpoint_for_finds_by_operation_and_method(shipped):
    assert shipped.endpoint_for("customers.delete", "POST").template == "/api/customers/bulk-delete"
    assert shipped.endpoint_for("customers.view", "HEAD").method == "GET"
    assert shipped.endpoint_for("customers.view", "POST") is None


LOADER_ERRORS = [
    # (endpoints block, expected "line:col: fragment")
    (
        "  - {method: GET, path: /a, operation: customers.list, records: [], colour: red}\n",
        "10:67: endpoints.0.colour: unknown key 'colour'",
    ),
    ("  - {method: GET, path: /a, operation: customers.list}\n", "10:3: endpoints.0.records: Field required"),
    ("  - {method: FETCH, path: /a, operation: customers.list, records: []}\n", "10:12: bad method 'FETCH'"),
    ("  - {method: get, path: /a, operation: customers.list, records: []}\n", "10:12: bad method 'get'"),
    ("  - {method: HEAD, path: /a, operation: customers.list, records: []}\n", "10:12: HEAD is decided as GET"),
    (
        "  - {method: GET, path: a, operation: customers.list, records: []}\n",
        "10:23: path template must start with '/'",
    ),
    (
        '  - {method: GET, path: "/a/{id:guid}", operation: customers.list, records: []}\n',
        "10:23: unknown parameter type 'guid'",
    ),
    ('  - {method: GET, path: "/a/x{id}", operation: customers.list, records: []}\n', "10:23: bad parameter 'x{id}'"),
    (
        '  - {method: GET, path: "/a/{id}/{id}", operation: customers.list, records: []}\n',
        "10:23: parameter 'id' appears twice",
    ),
    ("  - {method: GET, path: /a//b, operation: customers.list, records: []}\n", "10:23: empty segment"),
    ("  - {method: GET, path: /a/../b, operation: customers.list, records: []}\n", "10:23: literal segment '..'"),
    ("  - {method: GET, path: /a, operation: orders.list, records: []}\n", "10:38: unknown resource 'orders'"),
    ("  - {method: GET, path: /a, operation: customers.browse, records: []}\n", "10:38: unknown action 'browse'"),
    (
        "  - {method: GET, path: /a, operation: customers, records: []}\n",
        "10:38: operation 'customers' must be '<resource>.<action>'",
    ),
    (
        '  - {method: GET, path: /a, operation: customers.list, records: ["data[].x y"]}\n',
        "10:64: records: bad field path 'data[].x y'",
    ),
    (
        '  - {method: GET, path: /a, operation: customers.list, records: ["$"], format: yaml}\n',
        "10:78: endpoints.0.format: Input should be 'json', 'csv', 'xml' or 'ndjson'",
    ),
    (
        '  - {method: GET, path: /a, operation: customers.list, records: ["$"], format: xml}\n',
        "10:63: xml records name elements from the one root element",
    ),
    (
        '  - {method: GET, path: /a, operation: customers.list, records: ["data[]"], format: ndjson}\n',
        '10:63: an ndjson endpoint\'s records are ["$"]',
    ),
    (
        '  - {method: GET, path: /a, operation: customers.list, records: ["data[]"], format: csv}\n',
        "10:63: a csv endpoint's records are",
    ),
    (
        '  - {method: GET, path: /a, operation: deals.export, records: ["$"], format: csv}\n',
        "10:76: csv rows only have top-level columns",
    ),
    (
        '  - {method: POST, path: /a, operation: customers.delete, records: [], ids_from_body: "ids[].]"}\n',
        "10:85: ids_from_body: bad field path",
    ),
    (
        '  - {method: PUT, path: "/a/{id}", operation: customers.update, records: ["$"]}\n',
        "10:3: update endpoint needs 'lookup'",
    ),
    (
        "  - {method: DELETE, path: /a, operation: customers.delete, records: []}\n",
        "10:3: delete endpoint must name its records",
    ),
]


@pytest.mark.parametrize(("endpoints", "expected"), LOADER_ERRORS)
def test_loader_reports_problem_with_line_and_column(tmp_path, endpoints, expected):
    catalogue, errors = load(tmp_path, endpoints)
    assert catalogue is None
    assert any(expected in m for m in messages(errors)), messages(errors)
    assert all(m.startswith("rules/operations.yaml:") for m in messages(errors))


def test_duplicate_templates_are_an_ambiguous_catalogue(tmp_path):
    catalogue, errors = load(
        tmp_path,
        """\
      - {method: GET, path: "/a/{id}", operation: customers.view, records: ["$"]}
      - {method: GET, path: "/a/{key}", operation: customers.list, records: ["$"]}
    """,
    )
    assert catalogue is None
    assert messages(errors) == [
        "rules/operations.yaml:11:23: GET /a/{key} matches the same requests as GET /a/{id} "
        "(operations.yaml:10): ambiguous catalogue"
    ]


def test_same_template_with_another_method_is_not_a_clash(tmp_path):
    catalogue, errors = load(
        tmp_path,
        """\
      - {method: GET, path: "/a/{id}", operation: customers.view, records: ["$"]}
      - {method: DELETE, path: "/a/{id}", operation: customers.delete, records: [], lookup: "/a/{id}"}
    """,
    )
    assert errors == []
    assert catalogue.match("DELETE", "/a/1")[0].operation == "customers.delete"


LOOKUP_ERRORS = [
    (
        '  - {method: PUT, path: "/a/{id}", operation: customers.update, records: [], lookup: "/b/{id}"}\n',
        "is not a GET endpoint",
    ),
    (
        '  - {method: PUT, path: "/a/{id}", operation: customers.update, records: [], lookup: "/v/{key}"}\n',
        "must use the parameter names of the GET template",
    ),
    (
        '  - {method: PUT, path: "/a/{id}", operation: customers.update, records: [], lookup: "/d/{id}"}\n',
        "reads 'deals', not 'customers'",
    ),
    (
        '  - {method: POST, path: "/a", operation: customers.delete, records: [], lookup: "/a/x", '
        'ids_from_body: "ids[]"}\n',
        "must have exactly one parameter",
    ),
    (
        '  - {method: PUT, path: "/a/{id}", operation: customers.update, records: [], lookup: "v/{id}"}\n',
        "lookup: path template must start with '/'",
    ),
]


@pytest.mark.parametrize(("endpoint", "fragment"), LOOKUP_ERRORS)
def test_lookup_must_name_a_get_template_with_the_same_params(tmp_path, endpoint, fragment):
    catalogue, errors = load(
        tmp_path,
        """\
      - {method: GET, path: "/v/{id:int}", operation: customers.view, records: ["$"]}
      - {method: GET, path: "/d/{id}", operation: deals.view, records: ["$"]}
      - {method: GET, path: "/a/x", operation: customers.view, records: ["$"]}
    """
        + endpoint,
    )
    assert catalogue is None
    assert len(errors) == 1
    assert ":13:" in str(errors[0]) and fragment in str(errors[0])


def test_every_problem_is_reported_at_once(tmp_path):
    catalogue, errors = load(
        tmp_path,
        """\
      - {method: FETCH, path: /a, operation: customers.list, records: []}
      - {method: GET, path: /b, operation: orders.list, records: []}
      - {method: GET, path: /c, operation: customers.list}
    """,
    )
    assert catalogue is None
    assert [e.line for e in errors] == [10, 11, 12]


RESOURCE_ERRORS = [
    ("  Customers: {}\n", "resource name 'Customers'"),
    ("  x:\n    scope: {all: {field: a, identity: user}}\n", "Input should be 'own'"),
    ("  x:\n    scope: {own: {field: a, identity: user, extra: 1}}\n", "unknown key 'extra'"),
    ("  x:\n    scope: {own: {field: 'a..b', identity: user}}\n", "scope own field: bad field path"),
    ("  x:\n    scope: {own: {field: a, identity: User-Id}}\n", "bad identity attribute 'User-Id'"),
    ("  x:\n    id_field: ''\n", "id_field: field path must be a non-empty string"),
]


@pytest.mark.parametrize(("resource", "fragment"), RESOURCE_ERRORS)
def test_resource_problems_are_reported(tmp_path, resource, fragment):
    header = "format: crmgw.rules/v1\nresources:\n" + resource + "endpoints:\n"
    catalogue, errors = load(tmp_path, "  - {method: GET, path: /a, operation: customers.list, records: []}\n", header)
    assert catalogue is None
    assert any(fragment in m for m in messages(errors)), messages(errors)
    assert errors[0].line >= 3


def test_unknown_top_level_key_and_wrong_format_are_refused(tmp_path):
    _, errors = load(tmp_path, "", "format: crmgw.rules/v1\nresources: {}\nroutes: 1\nendpoints: []\n")
    assert any("unknown key 'routes'" in m for m in messages(errors))
    _, errors = load(tmp_path, "", "format: crmgw.rules/v0\nresources: {}\nendpoints: []\n")
    assert any("unknown or missing format" in m for m in messages(errors))


@pytest.mark.parametrize(
    ("header", "endpoints", "expected"),
    [
        # top level, an endpoint, and a scope spec (a union of two models: pydantic's loc names the
        # member it tried, which is not in the file)
        ("format: crmgw.rules/v1\nresources: {}\nroutes: 1\nendpoints: []\n", "", "3:1: routes: unknown key"),
        (
            HEADER,
            "  - method: GET\n    path: /a\n    operation: customers.list\n    records: []\n    colour: red\n",
            "14:3: endpoints.0.colour: unknown key",  # dedented: "  colour: red"
        ),
        (
            "format: crmgw.rules/v1\nresources:\n  x:\n    scope:\n      own:\n        field: a\n"
            "        identity: user\n        extra: 1\nendpoints: []\n",
            "",
            "8:9: resources.x.scope.own._ScopeSpec.extra: unknown key",
        ),
    ],
)
def test_an_unknown_key_is_reported_at_the_key_not_its_value(tmp_path, header, endpoints, expected):
    _, errors = load(tmp_path, endpoints, header)
    assert any(m.startswith(f"rules/operations.yaml:{expected}") for m in messages(errors)), messages(errors)


def test_empty_catalogue_is_an_error(tmp_path):
    catalogue, errors = load(tmp_path, "", "format: crmgw.rules/v1\nresources: {}\nendpoints: []\n")
    assert catalogue is None
    assert messages(errors) == ["rules/operations.yaml:3:12: the catalogue declares no endpoints"]


# --- contracts: bodies, queries, answers (issue 9) ------------------------------------------------


def test_a_writable_key_that_decides_scope_must_be_declared_as_people_or_org(tmp_path):
    catalogue, errors = load(
        tmp_path,
        """\
        - {method: POST, path: /api/customers, operation: customers.create, records: ["$"],
           body: {writable: [name, owner_id]}}
        """,
    )
    assert catalogue is None
    assert any("writable key 'owner_id' decides scope 'own'" in m for m in messages(errors)), messages(errors)


def test_contract_mistakes_are_all_reported_with_file_and_line(tmp_path):
    header = HEADER.replace(
        """  deals:""",
        """    writes:
      org:
        - {fields: [team], level: team, references: nowhere}
  deals:""",
    )
    catalogue, errors = load(
        tmp_path,
        """\
        - {method: GET, path: /api/customers, operation: customers.list, records: ["data[]"],
           query: {limit: {type: string, max: 5}}, related: [{path: "users[]", resource: people}],
           aggregates: {"a[].b": count}}
        - {method: POST, path: /api/deals, operation: deals.create, records: ["$"],
           body: {media: [json, yaml]}, bogus: 1}
        """,
        header=header,
    )
    assert catalogue is None
    text = "\n".join(messages(errors))
    for expected in (
        "unknown references map 'nowhere'",
        "unknown key 'bogus'",
        "'min'/'max' are only for type int",
        "unknown resource 'people'",
        "no [] in its path",
        "media",
    ):
        assert expected in text, text


def test_contracts_are_compiled_onto_the_endpoint(shipped):
    endpoint, _ = shipped.match("GET", "/api/customers")
    assert set(endpoint.query) == {"page", "page_size"} and endpoint.query["page_size"].max == 200
    assert [(a.path, a.op) for a in endpoint.answer.aggregates] == [("total", "count")]
    create, _ = shipped.match("POST", "/api/customers")
    assert "owner_id" in create.body.writable and create.resource.writes.missing_owner == "caller"


def test_untyped_parameters_are_warnings_not_errors(tmp_path):
    catalogue, errors = load(
        tmp_path,
        """\
        - {method: GET, path: "/api/customers/{id}", operation: customers.view, records: ["$"]}
        - {method: GET, path: "/api/deals/{id:int}", operation: deals.view, records: ["$"]}
        """,
    )
    assert errors == [] and catalogue is not None
    assert [w.message for w in catalogue.warnings] == [
        "warning: parameter {id} of '/api/customers/{id}' is untyped: it also matches literal sub-resources; "
        "type it ({id:uuid}, :int, :slug or a pattern)"
    ]


def test_named_patterns_type_parameters_and_bad_patterns_are_errors(tmp_path):
    header = HEADER.replace("resources:", 'patterns: {code: "[A-Z]{3}-[0-9]+", bad: "(", empty: ".*"}\nresources:')
    catalogue, errors = load(
        tmp_path,
        """\
        - {method: GET, path: "/api/customers/{c:code}", operation: customers.view, records: ["$"]}
        """,
        header=header,
    )
    text = "\n".join(messages(errors))
    assert catalogue is None and "pattern 'bad'" in text and "pattern 'empty' matches an empty segment" in text


def test_rules_check_prints_warnings_and_still_passes(tmp_path, capsys):
    import shutil

    from gateway.cli import main

    rules = tmp_path / "rules"
    shutil.copytree(RULES.parent, rules)
    text = (
        (rules / "operations.yaml")
        .read_text()
        .replace(
            'path: "/api/customers/{id:int}", operation: customers.view',
            'path: "/api/customers/{id}", operation: customers.view',
        )
    )
    (rules / "operations.yaml").write_text(text)
    code = main(["rules", "check", str(rules)])
    out = capsys.readouterr().out
    assert code == 0 and "warning: parameter {id}" in out and "1 warning(s)" in out
