"""The records an update/delete names, read from the one parsed request body every check shares."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from gateway.context.catalogue import Catalogue, load_catalogue
from gateway.errors import GatewayError
from gateway.model import Identity, RequestContext, User
from gateway.response.write_targets import MAX_BULK_IDS, count_targets, target_params
from gateway.upstream.bodies import RequestBody

CATALOGUE = """\
format: crmgw.rules/v1
resources:
  leads:
    scope:
      own: {field: owner_id, identity: user}
endpoints:
  - {method: GET, path: "/leads/{id}", operation: leads.view, records: ["$"]}
  - {method: PUT, path: "/leads/{id}", operation: leads.update, records: ["$"], lookup: "/leads/{id}"}
  - {method: POST, path: /leads/bulk-delete, operation: leads.delete, records: [], lookup: "/leads/{id}",
     ids_from_body: "ids[]"}
  - {method: POST, path: /leads/, operation: leads.create, records: ["$"]}
"""
JSON = "application/json"


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    path = Path(tmp_path_factory.mktemp("rules")) / "operations.yaml"
    path.write_text(textwrap.dedent(CATALOGUE))
    loaded, errors = load_catalogue(path)
    assert errors == [], [str(e) for e in errors]
    return loaded


def context(catalogue: Catalogue, method: str, path: str) -> RequestContext:
    matched = catalogue.match(method, path)
    assert matched is not None
    endpoint, params = matched
    return RequestContext(
        request_id="t",
        method=method,
        path=path,
        query={},
        client_ip=None,
        country=None,
        now=datetime.now(UTC),
        identity=Identity(User(id="ann"), "jwt"),
        endpoint=endpoint,
        path_params=params,
    )


def targets(catalogue: Catalogue, ctx: RequestContext, body: RequestBody) -> list[dict[str, str | int]]:
    assert ctx.endpoint is not None and ctx.endpoint.lookup is not None
    return target_params(ctx, catalogue.parse_template(ctx.endpoint.lookup), body)


def test_a_bulk_body_is_parsed_once_for_the_count_and_the_lookups(catalogue):
    ctx = context(catalogue, "POST", "/leads/bulk-delete")
    body = RequestBody(orjson.dumps({"ids": ["L-1", 2, "L 3"]}), JSON)
    assert count_targets(ctx, body) == 3
    document = body.data()
    assert targets(catalogue, ctx, body) == [{"id": "L-1"}, {"id": "2"}, {"id": "L%203"}]
    assert body.data() is document  # the lookups read the document the count read


def test_a_single_record_write_targets_its_path(catalogue):
    ctx = context(catalogue, "PUT", "/leads/L-9")
    body = RequestBody(b'{"title": "x"}', JSON)
    assert count_targets(ctx, body) == 1
    assert targets(catalogue, ctx, body) == [{"id": "L-9"}]


def test_no_count_for_what_is_not_an_update_or_delete(catalogue):
    assert count_targets(context(catalogue, "POST", "/leads/"), RequestBody(b"{}", JSON)) is None


@pytest.mark.parametrize(
    ("raw", "ctype", "count", "reason"),
    [
        (b"", JSON, 0, "ids-missing"),
        (b'{"ids": []}', JSON, 0, "ids-missing"),
        (b"ids=1", "application/x-www-form-urlencoded", None, "body-unreadable"),  # ids need JSON
        (b'{"ids": [1], "ids": [2]}', JSON, None, "body-ambiguous"),
        (b'{"ids": [null]}', JSON, 1, "id-invalid"),
        (b'{"ids": [".."]}', JSON, 1, "id-invalid"),
        (orjson.dumps({"ids": list(range(MAX_BULK_IDS + 1))}), JSON, MAX_BULK_IDS + 1, "too-many-ids"),
    ],
)
def test_bulk_ids_refused(catalogue, raw, ctype, count, reason):
    ctx = context(catalogue, "POST", "/leads/bulk-delete")
    body = RequestBody(raw, ctype)
    if count is None:
        with pytest.raises(GatewayError) as counted:
            count_targets(ctx, body)
        assert counted.value.reason == reason
    else:
        assert count_targets(ctx, body) == count
    with pytest.raises(GatewayError) as caught:
        targets(catalogue, ctx, body)
    assert caught.value.reason == reason
