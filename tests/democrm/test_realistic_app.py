"""The realistic profile as an application: the factories, the shared middlewares, its store, the CLI."""

from __future__ import annotations

import gzip

import pytest
from aiohttp import web
from yarl import URL

import democrm.__main__ as cli
from democrm.app import REQUESTS_SEEN, SeenRequest, create_app
from democrm.auth import issue_token
from democrm.realistic import REALISTIC_STORE, RealisticStore, create_realistic_app
from democrm.state import CONFIG, STORE

from .conftest import AS_ALICE


async def export(crm) -> bytes:
    return await (await crm.get("/api/v2/leads/export/", headers=AS_ALICE)).read()


def test_create_app_builds_either_profile():
    realistic, classic = create_app(profile="realistic", seed=3), create_app(customers=1, contacts=1, deals=1)
    assert REALISTIC_STORE in realistic and STORE not in realistic
    assert STORE in classic and REALISTIC_STORE not in classic
    classic[STORE].close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"profile": "salesforce"}, "unknown democrm profile"),
        ({"profile": "realistic", "db_path": "crm.sqlite3"}, "in memory"),
    ],
)
def test_create_app_refuses_what_it_cannot_honour(options, message):
    with pytest.raises(ValueError, match=message):
        create_app(**options)


async def test_same_seed_same_data_other_seed_other_data(make_realistic):
    assert await export(await make_realistic()) == await export(await make_realistic())
    assert await export(await make_realistic(seed=7)) != await export(await make_realistic())


async def test_created_ids_are_deterministic_per_seed(make_realistic):
    async def new_id(crm):
        return (await (await crm.post("/api/v2/leads/", json={"title": "x"}, headers=AS_ALICE)).json())["id"]

    first, second = await make_realistic(), await make_realistic()
    assert await new_id(first) == await new_id(second)
    assert await new_id(first) != await new_id(await make_realistic(seed=8))


async def test_requests_seen_records_every_request_as_received(realistic):
    await realistic.post(
        URL("/api/v2/leads/?x=%41", encoded=True),
        data=b"title=seen",
        headers={**AS_ALICE, "Content-Type": "application/x-www-form-urlencoded"},
    )
    await realistic.get("/api/v2/leads", headers={"Authorization": "Bearer nope"})
    created, refused = list(realistic.app[REQUESTS_SEEN])[-2:]
    assert isinstance(created, SeenRequest)
    assert (created.method, created.raw_path, created.query_string, created.body) == (
        "POST",
        "/api/v2/leads/",
        "x=%41",
        b"title=seen",
    )
    assert created.header("x-crm-user") == "alice"
    assert (refused.raw_path, refused.header("Authorization")) == ("/api/v2/leads", "Bearer nope")


@pytest.mark.parametrize("authorization", ["Bearer crmpat-carol", "Bearer {jwt}"])
async def test_personal_tokens_and_crm_jwts_act_as_their_user(make_realistic, authorization):
    crm = await make_realistic(jwt_secret="s" * 32)
    token = authorization.format(jwt=issue_token("carol", "s" * 32))
    response = await crm.post(
        "/api/v2/leads/", json={"title": "x"}, headers={"Authorization": token, "X-CRM-User": "alice"}
    )
    assert [p["email"] for p in (await response.json())["assigned_to"]] == ["carol@example.com"]


async def test_a_custom_service_token_and_the_public_health_check(make_realistic):
    crm = await make_realistic(service_token="other")
    assert (await crm.get("/api/v2/leads/", headers=AS_ALICE)).status == 401
    assert (await crm.get("/api/v2/leads/", headers={"Authorization": "Bearer other"})).status == 200
    assert await (await crm.get("/health")).json() == {"status": "ok"}


async def test_gzip_mode_compresses_like_the_classic_profile(make_realistic):
    plain = await export(await make_realistic())
    crm = await make_realistic(client_options={"auto_decompress": False}, gzip=True)
    response = await crm.get("/api/v2/leads/export/", headers={**AS_ALICE, "Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip" and gzip.decompress(await response.read()) == plain


async def test_the_store_is_the_state_the_api_serves(realistic):
    crm_store = realistic.app[REALISTIC_STORE]
    assert (
        isinstance(crm_store, RealisticStore) and crm_store.count("leads") == 60 and crm_store.count("accounts") == 30
    )
    lead = crm_store.all("leads")[0]
    assert crm_store.get("leads", lead["id"]) == lead
    assert (await (await realistic.get(f"/api/v2/leads/{lead['id']}/", headers=AS_ALICE)).json())["lead"] == lead


def test_the_store_hands_out_copies():
    crm_store = RealisticStore(1, {"leads": [{"id": "a", "assigned_to": [{"id": "p"}]}]})
    crm_store.get("leads", "a")["assigned_to"].clear()
    crm_store.all("leads")[0]["assigned_to"].clear()
    assert crm_store.get("leads", "a") == {"id": "a", "assigned_to": [{"id": "p"}]}


def test_the_store_gives_new_records_an_id_first_and_refuses_unknowns():
    crm_store = RealisticStore(1)
    record = crm_store.insert("accounts", {"name": "n"})
    assert list(record) == ["id", "name"] and crm_store.all("accounts") == [record]
    with pytest.raises(KeyError):
        crm_store.insert("accounts", record)
    with pytest.raises(KeyError):
        crm_store.replace("leads", {"id": "missing"})
    with pytest.raises(KeyError):
        crm_store.all("customers")
    assert crm_store.delete("accounts", record["id"]) and not crm_store.delete("accounts", record["id"])


def test_main_runs_the_realistic_profile(monkeypatch):
    started = {}
    monkeypatch.setattr(web, "run_app", lambda app, *, host, port: started.update(app=app, port=port))
    cli.main(["--profile", "realistic", "--port", "9998", "--seed", "5", "--gzip"])
    app = started["app"]
    assert started["port"] == 9998 and app[CONFIG].gzip and app[REALISTIC_STORE].count("leads") == 60


def test_main_refuses_a_database_file_for_the_realistic_profile(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--profile", "realistic", "--db", "crm.sqlite3"])
    assert "in memory" in capsys.readouterr().err


def test_the_realistic_factory_is_exported_from_the_package():
    assert isinstance(create_realistic_app(leads=1, accounts=1), web.Application)
