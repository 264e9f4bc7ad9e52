"""Only declared query parameters, within their bounds, reach the CRM for a restricted caller."""

from __future__ import annotations

import pytest

from gateway.context.queryargs import check_query
from gateway.declared import QueryParam
from gateway.errors import BadRequest

DECLARED = {
    "page": QueryParam("page", "int", min=1),
    "limit": QueryParam("limit", "int", min=1, max=100),
    "q": QueryParam("q", "string", max_length=10),
    "status": QueryParam("status", "enum", values=("open", "won")),
    "archived": QueryParam("archived", "bool"),
}


@pytest.mark.parametrize(
    "query", [{}, {"page": "2", "limit": "100"}, {"q": "dupont"}, {"status": "won"}, {"archived": "false"}]
)
def test_declared_parameters_within_bounds_pass(query):
    check_query(DECLARED, query)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"include": "users"}, "query-parameter-undeclared"),
        ({"limit": "101"}, "query-parameter-invalid"),
        ({"limit": "0"}, "query-parameter-invalid"),
        ({"limit": "+5"}, "query-parameter-invalid"),
        ({"limit": "1e3"}, "query-parameter-invalid"),
        ({"q": "x" * 11}, "query-parameter-invalid"),
        ({"status": "lost"}, "query-parameter-invalid"),
        ({"archived": "maybe"}, "query-parameter-invalid"),
    ],
)
def test_undeclared_or_out_of_bounds_parameters_are_refused(query, reason):
    with pytest.raises(BadRequest) as caught:
        check_query(DECLARED, query)
    assert caught.value.reason == reason


def test_an_endpoint_without_declarations_accepts_no_parameter():
    with pytest.raises(BadRequest):
        check_query(None, {"page": "1"})
