"""create_app and its middlewares: seeding, login, JSON errors, gzip/deflate, REQUESTS_SEEN."""

from __future__ import annotations

import gzip
import zlib

import pytest
from yarl import URL

from democrm.app import REQUESTS_SEEN, SeenRequest, create_app

from .conftest import AS_ALICE

RAW = {"auto_decompress": False}


async def export(crm) -> bytes:
    return await (await crm.get("/api/customers/export.csv", headers=AS_ALICE)).read()


# -- seeding --------------------------------------------------------------------------------------


async def test_same_seed_serves_identical_data(make_crm):
    assert await export(await make_crm()) == await export(await make_crm())


async def test_another_seed_serves_other_data(make_crm):
    assert await export(await make_crm(seed=7)) != await export(await make_crm())


async def test_default_sizes_are_a_few_hundred_records(aiohttp_client):
    crm = await aiohttp_client(create_app())
    totals = [
        (
            await (
                await crm.get(
                    f"/api/{t}/export.json" if t == "customers" else f"/api/{t}?page_size=1000", headers=AS_ALICE
                )
            ).json()
        )
        for t in ("customers", "contacts", "deals")
    ]
    assert len(totals[0]["customers"]) == 300
    assert totals[1]["results"]["count"] == 400
    assert len(totals[2]["open"]) + len(totals[2]["closed"]) == 200


async def test_a_database_file_is_seeded_once_and_keeps_changes(make_crm, tmp_path):
    path = str(tmp_path / "crm.sqlite3")
    first = await make_crm(db_path=path)
    await first.delete("/api/customers/1", headers=AS_ALICE)
    again = await make_crm(db_path=path)
    assert (await again.get("/api/customers/1", headers=AS_ALICE)).status == 404


# -- login ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-CRM-User": "alice"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "demo-crm-service-token"},
        {"Authorization": "Bearer crmpat-mallory"},
        {"Authorization": "Bearer a.b.c"},
    ],
)
async def test_bad_credentials_are_a_401(crm, headers):
    response = await crm.get("/api/customers", headers=headers)
    assert (response.status, await response.json()) == (401, {"error": "not logged in"})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/customers/1"),
        ("DELETE", "/api/customers/1"),
        ("GET", "/api/customers/export.csv"),
        ("POST", "/api/customers/bulk-delete"),
        ("POST", "/api/customers/import"),
        ("GET", "/api/contacts"),
        ("GET", "/api/deals/1"),
        ("GET", "/api/admin/users"),
        ("GET", "/api/unknown"),
        ("GET", "/health/"),
    ],
)
async def test_without_login_everything_but_health_and_login_is_a_401(crm, method, path):
    response = await crm.request(method, path, json={"ids": [1]})
    assert (response.status, await response.json()) == (401, {"error": "not logged in"})
    assert (await crm.get("/api/customers/1", headers=AS_ALICE)).status == 200  # nothing was deleted


async def test_a_custom_service_token_replaces_the_default(make_crm):
    crm = await make_crm(service_token="other")
    assert (await crm.get("/api/customers", headers=AS_ALICE)).status == 401
    assert (await crm.get("/api/customers", headers={"Authorization": "Bearer other"})).status == 200


async def test_login_tokens_are_signed_with_the_configured_secret(make_crm):
    issuer, other = await make_crm(jwt_secret="a" * 32), await make_crm()
    token = (await (await issuer.post("/api/login", json={"user": "carol"})).json())["token"]
    assert (await issuer.get("/api/deals", headers={"Authorization": f"Bearer {token}"})).status == 200
    assert (await other.get("/api/deals", headers={"Authorization": f"Bearer {token}"})).status == 401


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/api/nothing", 404, "not found"),
        ("GET", "/api/customers/abc", 404, "not found"),
        ("DELETE", "/api/customers/export.csv", 405, "method not allowed"),
        ("PATCH", "/api/customers", 405, "method not allowed"),
    ],
)
async def test_routing_errors_are_json(crm, method, path, status, error):
    response = await crm.request(method, path, headers=AS_ALICE)
    assert (response.status, await response.json()) == (status, {"error": error})


# -- compression ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "coding", "decode"),
    [
        ("gzip", "gzip", gzip.decompress),
        ("deflate, gzip;q=0.5", "gzip", gzip.decompress),
        ("deflate", "deflate", zlib.decompress),
        ("gzip;q=0, deflate", "deflate", zlib.decompress),
        ("x-gzip", "gzip", gzip.decompress),
        ("*", "gzip", gzip.decompress),
        ("identity", None, bytes),
        ("gzip;q=0", None, bytes),
        ("br", None, bytes),
    ],
)
async def test_gzip_mode_encodes_what_the_client_accepts(make_crm, accept, coding, decode):
    path = "/api/customers/export.csv"
    plain = await (await (await make_crm()).get(path, headers=AS_ALICE)).read()
    response = await (await make_crm(client_options=RAW, gzip=True)).get(
        path, headers={**AS_ALICE, "Accept-Encoding": accept}
    )
    assert response.headers.get("Content-Encoding") == coding
    assert response.headers["Vary"] == "Accept-Encoding"
    assert decode(await response.read()) == plain


@pytest.mark.parametrize("path", ["/api/customers?page_size=3", "/api/contacts/1", "/api/nothing", "/health"])
async def test_gzip_mode_encodes_json_and_errors_too(make_crm, path):
    plain = await (await (await make_crm()).get(path, headers=AS_ALICE)).read()
    response = await (await make_crm(client_options=RAW, gzip=True)).get(
        path, headers={**AS_ALICE, "Accept-Encoding": "gzip"}
    )
    assert response.headers["Content-Encoding"] == "gzip" and gzip.decompress(await response.read()) == plain


async def test_without_gzip_mode_nothing_is_encoded(make_crm):
    response = await (await make_crm(client_options=RAW)).get(
        "/api/customers", headers={**AS_ALICE, "Accept-Encoding": "gzip"}
    )
    assert "Content-Encoding" not in response.headers and "Vary" not in response.headers
    assert (await response.read()).startswith(b'{"data"')


async def test_empty_responses_are_not_encoded(make_crm):
    crm = await make_crm(client_options=RAW, gzip=True)
    response = await crm.delete("/api/customers/1", headers={**AS_ALICE, "Accept-Encoding": "gzip"})
    assert (response.status, await response.read(), response.headers.get("Content-Encoding")) == (204, b"", None)


# -- what reached the CRM -------------------------------------------------------------------------


async def test_requests_seen_keeps_raw_path_query_headers_and_body(crm):
    url = URL("/api/customers/1%2F..?page=1&x=%41", encoded=True)
    await crm.post(url, data=b"\x00raw", headers={**AS_ALICE, "X-Extra": "1"})
    seen = crm.app[REQUESTS_SEEN][-1]
    assert isinstance(seen, SeenRequest)
    assert (seen.method, seen.raw_path, seen.query_string, seen.body) == (
        "POST",
        "/api/customers/1%2F..",
        "page=1&x=%41",
        b"\x00raw",
    )
    assert seen.header("x-crm-user") == "alice" and seen.headers["X-Extra"] == "1"


async def test_requests_seen_includes_refused_requests(crm):
    await crm.get("/api/customers", headers={"Authorization": "Bearer nope"})
    assert crm.app[REQUESTS_SEEN][-1].header("Authorization") == "Bearer nope"


async def test_repeated_headers_are_joined_and_kept_raw(crm):
    await crm.get("/health", headers=[("X-CRM-User", "alice"), ("X-CRM-User", "bob")])
    seen = crm.app[REQUESTS_SEEN][-1]
    assert seen.headers["X-CRM-User"] == "alice, bob"
    assert [v for k, v in seen.raw_headers if k == "X-CRM-User"] == ["alice", "bob"]


async def test_requests_seen_is_bounded(crm):
    assert crm.app[REQUESTS_SEEN].maxlen == 2000


async def test_large_bodies_are_kept_truncated(crm):
    await crm.post("/api/customers/bulk-delete", data=b"x" * 300_000, headers=AS_ALICE)
    seen = crm.app[REQUESTS_SEEN][-1]
    assert seen.body_truncated and len(seen.body) == 256 * 1024
