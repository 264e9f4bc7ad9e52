"""What the drafter guesses from one operation, and where it writes a TODO instead: truth tables."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gateway.context.todos import is_todo
from gateway.drafting import naming
from gateway.drafting.from_openapi import draft_from_openapi
from gateway.drafting.openapi import OpenAPIError, Spec


@pytest.mark.parametrize(
    ("path", "collection", "ends", "word", "after_item"),
    [
        ("/api/v2/leads/", "leads", "collection", None, False),
        ("/api/v2/leads/{id}/", "leads", "item", None, False),
        ("/api/v2/leads/kanban/", "leads", "word", "kanban", False),
        ("/api/v2/leads/{id}/notes/", "notes", "collection", None, False),
        ("/api/v2/leads/{id}/convert/", "leads", "word", "convert", True),
        ("/rest/v1.2/Sales-Orders", "sales_orders", "collection", None, False),
        ("/customers/export.csv", "customers", "word", "export.csv", False),
        ("/api", "api", "collection", None, False),  # a prefix word alone is all the path says
    ],
)
def test_path_shapes(path, collection, ends, word, after_item):
    shape = naming.shape(path)
    assert (shape.collection, shape.ends, shape.word, shape.after_item) == (collection, ends, word, after_item)


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("/leads/export/", "export"),
        ("/leads/export.csv", "export"),
        ("/leads/import/", "import"),
        ("/leads/bulk-update/", "update"),
        ("/leads/bulk_delete", "delete"),
        ("/leads/batch-create/", "create"),
        ("/leads/bulk/", None),
        ("/leads/kanban/", None),
        ("/leads/{id}/download/", None),
    ],
)
def test_words_that_name_an_action(path, action):
    assert naming.word_action(naming.shape(path)) == action


@pytest.mark.parametrize(
    ("segment", "kind"),
    [
        ("5d1e2c1a-0c55-4b8e-9e52-6a0e0c0f0a01", "uuid"),
        ("123", "int"),
        ("5f8d0d55b54764421b7156c9", "id"),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "id"),
        ("deadbeef", None),
        ("kanban", None),
        ("export.csv", None),
        ("v2", None),
    ],
)
def test_segments_that_look_like_ids(segment, kind):
    assert naming.segment_kind(segment) == kind


@pytest.mark.parametrize(
    ("name", "singular"),
    [
        ("leads", "lead"),
        ("opportunities", "opportunity"),
        ("addresses", "address"),
        ("boxes", "box"),
    ],
)
def test_singular_and_plural(name, singular):
    assert naming.singular(name) == singular
    assert naming.plural(singular) == name


@pytest.mark.parametrize(
    ("component", "collections", "resource"),
    [
        ("Lead", {"leads"}, "leads"),
        ("Opportunity", {"opportunities"}, "opportunities"),
        ("SalesOrder", set(), "sales_orders"),
        ("Staff", {"staff"}, "staff"),
    ],
)
def test_the_resource_a_schema_component_belongs_to(component, collections, resource):
    assert naming.resource_for_component(component, collections) == resource


def spec(paths: dict[str, Any], schemas: dict[str, Any] | None = None, version: str = "3.1.0") -> Spec:
    return Spec(
        {
            "openapi": version,
            "info": {"title": "t", "version": "1"},
            "paths": paths,
            "components": {"schemas": schemas or {}},
        }
    )


def ok(schema: Any, code: str = "200") -> dict[str, Any]:
    return {"responses": {code: {"description": "ok", "content": {"application/json": {"schema": schema}}}}}


LEAD = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid", "readOnly": True},
        "title": {"type": "string"},
        "owner_id": {"type": "integer"},
    },
}
REF = {"$ref": "#/components/schemas/Lead"}


def one(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    draft = draft_from_openapi(spec(paths, {"Lead": LEAD, **(schemas or {})}))
    assert len(draft.entries) == 1
    return draft.entries[0].data


@pytest.mark.parametrize(
    ("schema", "records"),
    [
        ({"type": "object", "properties": {"data": {"type": "array", "items": REF}}}, ["data[]"]),
        (
            {
                "type": "object",
                "properties": {
                    "results": {
                        "type": "object",
                        "properties": {"count": {"type": "integer"}, "items": {"type": "array", "items": REF}},
                    }
                },
            },
            ["results.items[]"],
        ),
        (
            {
                "type": "object",
                "properties": {"open": {"type": "array", "items": REF}, "closed": {"type": "array", "items": REF}},
            },
            ["open[]", "closed[]"],
        ),
    ],
)
def test_where_the_records_of_a_list_are(schema, records):
    assert one({"/leads": {"get": ok(schema)}})["records"] == records


def test_a_bare_array_or_a_single_record_where_a_list_belongs_is_a_todo():
    for schema in ({"type": "array", "items": REF}, REF):
        data = one({"/leads": {"get": ok(schema)}})
        assert data["operation"] == "leads.list" and is_todo(data["records"])


def test_a_wrapper_key_holds_the_viewed_record_and_counts_are_recomputed():
    view = one(
        {
            "/leads/{id}": {
                "get": ok({"type": "object", "properties": {"lead": REF}}),
                "parameters": [{"name": "id", "in": "path", "schema": {"type": "integer"}}],
            }
        }
    )
    assert (view["path"], view["operation"], view["records"]) == ("/leads/{id:int}", "leads.view", ["lead"])
    page = one(
        {
            "/leads": {
                "get": ok(
                    {
                        "type": "object",
                        "properties": {
                            "count": {"type": "integer"},
                            "page": {"type": "integer"},
                            "next": {"type": ["string", "null"]},
                            "data": {"type": "array", "items": REF},
                        },
                    }
                )
            }
        }
    )
    assert (page["aggregates"], page["metadata"]) == ({"count": "count"}, ["page"])  # next: left out


def test_two_kinds_of_records_and_no_resource_to_tell_them_apart_is_a_todo():
    other = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
    data = one(
        {
            "/things/search/": {
                "get": ok(
                    {
                        "type": "object",
                        "properties": {
                            "a": {"type": "array", "items": REF},
                            "b": {"type": "array", "items": {"$ref": "#/components/schemas/Other"}},
                        },
                    }
                )
            }
        },
        {"Other": other},
    )
    assert is_todo(data["records"]) and "several kinds of record" in data["records"]
    assert is_todo(data["operation"])


def test_write_bodies_list_their_keys_without_read_only_ones_and_the_media_the_gateway_reads():
    data = one(
        {
            "/leads/": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": REF},
                            "application/x-www-form-urlencoded": {"schema": REF},
                            "application/xml": {"schema": REF},
                        }
                    },
                    **ok(REF, "201"),
                }
            }
        }
    )
    assert data["body"] == {"media": ["json", "form"], "writable": ["title", "owner_id"]}


def test_a_free_form_body_is_a_todo():
    data = one(
        {
            "/leads/": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    **ok(REF, "201"),
                }
            }
        }
    )
    assert is_todo(data["body"]["writable"])


@pytest.mark.parametrize(
    ("schema", "declared"),
    [
        ({"type": "integer", "minimum": 1, "maximum": 100}, {"type": "int", "min": 1, "max": 100}),
        ({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 51}, {"type": "int", "min": 1, "max": 50}),
        ({"type": "integer", "minimum": 0, "exclusiveMinimum": True}, {"type": "int", "min": 1}),
        ({"type": "boolean"}, {"type": "bool"}),
        ({"type": "string", "enum": ["open", "won", None]}, {"type": "enum", "values": ["open", "won"]}),
        ({"type": "integer", "enum": [1, 2]}, {"type": "enum", "values": ["1", "2"]}),
        ({"type": "string", "maxLength": 99999}, {"max_length": 8192}),
        ({"type": "string", "format": "uuid"}, {"max_length": 36}),
        ({"type": "string"}, {}),
        ({"type": "number"}, {"max_length": 40}),
    ],
)
def test_query_parameters_keep_their_types_and_bounds(schema, declared):
    data = one(
        {
            "/leads": {
                "get": {
                    "parameters": [{"name": "q", "in": "query", "schema": schema}],
                    **ok({"type": "object", "properties": {"data": {"type": "array", "items": REF}}}),
                }
            }
        }
    )
    assert data["query"] == {"q": declared}


@pytest.mark.parametrize("name", ["fields", "expand", "include", "$select"])
def test_query_parameters_that_reshape_answers_are_todos(name):
    data = one(
        {
            "/leads": {
                "get": {
                    "parameters": [
                        {"name": name, "in": "query", "schema": {"type": "string"}},
                        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                    ],
                    **ok({"type": "object", "properties": {"data": {"type": "array", "items": REF}}}),
                }
            }
        }
    )
    assert list(data["query"]) == [name] and is_todo(data["query"][name])


def test_a_parameter_that_is_not_a_whole_segment_is_a_todo():
    data = one({"/files/{name}.pdf": {"get": ok(REF)}})
    assert is_todo(data["path"]) and "whole segments" in data["path"]


def test_a_resource_gets_its_fields_and_a_scope_todo_naming_owner_candidates():
    draft = draft_from_openapi(
        spec(
            {"/leads/": {"get": ok({"type": "object", "properties": {"data": {"type": "array", "items": REF}}})}},
            {"Lead": LEAD},
        )
    )
    leads = draft.resources["leads"]
    assert leads["fields"] == ["id", "title", "owner_id"] and leads["id_field"] == "id"
    assert is_todo(leads["scope"]) and "candidates: owner_id" in leads["scope"]


def test_openapi_2_and_unreadable_files_are_refused(tmp_path):
    with pytest.raises(OpenAPIError, match="swagger 2.0"):
        Spec({"swagger": "2.0", "paths": {}})
    with pytest.raises(OpenAPIError, match="no 'paths'"):
        Spec({"openapi": "3.0.0"})
    from gateway.drafting.openapi import load_openapi

    bad = tmp_path / "openapi.yaml"
    bad.write_text("openapi: [unclosed")
    with pytest.raises(OpenAPIError, match="not JSON or YAML"):
        load_openapi(bad)


def test_a_reference_into_another_file_is_named_in_the_draft_header():
    from gateway.drafting.from_openapi import draft_text

    text = draft_text(spec({"/leads/": {"get": ok({"$ref": "common.yaml#/Lead"})}}))
    assert "# unresolved $ref (bundle the document first): common.yaml#/Lead" in text
    assert is_todo(yaml.safe_load(text)["endpoints"][0]["records"])
