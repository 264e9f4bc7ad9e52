"""Fetched signing keys: OIDC discovery, JWKS cache with a TTL, rotation, rate-limited refresh,
fail closed, never blocking the event loop. A real identity provider (aiohttp) on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.errors import Unauthenticated
from gateway.identity.remote_keys import KeysNeeded

from .conftest import Clock, bearer, jwks_dict, make_stage, sign
from .idp import IdentityProvider

TTL = 300.0
MIN_INTERVAL = 30.0


@pytest.fixture
async def idp(aiohttp_server, rsa_key):
    provider = IdentityProvider({"k1": rsa_key})
    server = await aiohttp_server(provider.app())
    provider.issuer = str(server.make_url("")).rstrip("/")
    provider.server = server
    return provider


@pytest.fixture
def key_clock() -> Clock:
    return Clock(1000.0)


def stage_for(idp, tmp_path, key_clock, **cache):
    jwt = {
        "algorithms": ["RS256"],
        "issuer": idp.issuer,
        "audience": "crm",
        "oidc_discovery": True,
        "jwks_cache": {"ttl_seconds": TTL, "refresh_min_interval_seconds": MIN_INTERVAL, **cache},
    }
    from gateway.identity.config import IdentityConfig
    from gateway.identity.stage import IdentityStage

    return IdentityStage(IdentityConfig.model_validate({"jwt": jwt}), tmp_path, key_clock=key_clock)


@pytest.fixture
def stage(idp, tmp_path, key_clock):
    return stage_for(idp, tmp_path, key_clock)


async def refused(stage, headers, directory) -> str:
    with pytest.raises(Unauthenticated) as info:
        await stage.identify_async(headers, False, directory)
    assert not isinstance(info.value, KeysNeeded)  # the request path always gets a final answer
    return info.value.reason


async def test_discovery_then_jwks_then_the_cache(stage, idp, directory):
    identity = await stage.identify_async(idp.token("k1"), False, directory)
    assert (identity.user.id, identity.method) == ("alice", "jwt")
    assert idp.hits == {"discovery": 1, "jwks": 1}
    for user in ("bob", "carol"):  # other tokens, same key: no fetch
        assert (await stage.identify_async(idp.token("k1", user), False, directory)).user.id == user
    assert idp.hits == {"discovery": 1, "jwks": 1}
    (health,) = stage.health()["key_sets"]
    assert health["jwks_uri"] == f"{idp.issuer}/oauth2/keys" and health["kids"] == ["k1"]
    assert health["fresh"] and health["last_error"] is None and stage.health()["degraded"] == []


async def test_rotation_old_kid_refused_new_kid_accepted(stage, idp, directory, key_clock, rsa_key, rsa_key2):
    old_token = idp.token("k1")
    assert (await stage.identify_async(old_token, False, directory)).user.id == "alice"
    idp.keys = {"k2": rsa_key2}  # the provider rotates: k1 withdrawn
    key_clock.now += MIN_INTERVAL  # a refresh may run again
    new_token = idp.token("k2", "bob")
    assert (await stage.identify_async(new_token, False, directory)).user.id == "bob"
    assert idp.hits["jwks"] == 2  # the unknown kid triggered exactly one refresh
    # the old token was verified and cached before: the withdrawn key no longer vouches for it
    assert await refused(stage, old_token, directory) == "token-invalid"
    assert await refused(stage, idp.token("k1", "carol", key=rsa_key), directory) == "token-invalid"
    assert idp.hits["jwks"] == 2  # and they cost no fetch (rate-limited)
    assert stage.health()["key_sets"][0]["kids"] == ["k2"]


async def test_unknown_kid_refresh_is_rate_limited(stage, idp, directory, key_clock, rsa_key):
    await stage.identify_async(idp.token("k1"), False, directory)
    key_clock.now += MIN_INTERVAL
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        assert await refused(stage, idp.token(kid, key=rsa_key), directory) == "token-invalid"
    assert idp.hits["jwks"] == 2  # one refresh for three unknown kids
    key_clock.now += MIN_INTERVAL - 1
    assert await refused(stage, idp.token("made-up-4", key=rsa_key), directory) == "token-invalid"
    assert idp.hits["jwks"] == 2
    key_clock.now += 1
    assert await refused(stage, idp.token("made-up-5", key=rsa_key), directory) == "token-invalid"
    assert idp.hits["jwks"] == 3


async def test_concurrent_requests_share_one_refresh(stage, idp, directory, key_clock, rsa_key2):
    await stage.identify_async(idp.token("k1"), False, directory)
    idp.keys["k2"] = rsa_key2
    key_clock.now += MIN_INTERVAL
    users = ["alice", "bob", "carol", "dave", "erin"] * 4
    results = await asyncio.gather(*(stage.identify_async(idp.token("k2", u), False, directory) for u in users))
    assert [i.user.id for i in results] == users
    assert idp.hits["jwks"] == 2


async def test_fetching_does_not_block_the_event_loop(stage, idp, directory):
    # The provider runs on this very event loop: if the fetch blocked the loop, the JWKS handler
    # could not even start, and nothing below could happen before the fetch timed out.
    idp.gate = asyncio.Event()
    request = asyncio.create_task(stage.identify_async(idp.token("k1"), False, directory))
    await asyncio.wait_for(idp.reached.wait(), 5)
    assert not request.done()
    idp.gate.set()
    assert (await asyncio.wait_for(request, 5)).user.id == "alice"


async def test_keys_expire_after_the_ttl_and_refresh_early(stage, idp, directory, key_clock, rsa_key2):
    await stage.identify_async(idp.token("k1"), False, directory)
    key_clock.now += TTL * 0.85  # past 80 %: served from the cache, refreshed in the background
    idp.keys = {"k1": idp.keys["k1"], "k2": rsa_key2}
    assert (await stage.identify_async(idp.token("k1", "bob"), False, directory)).user.id == "bob"
    for _ in range(200):
        if stage.health()["key_sets"][0]["kids"] == ["k1", "k2"]:
            break
        await asyncio.sleep(0.01)
    assert idp.hits["jwks"] == 2 and stage.health()["key_sets"][0]["kids"] == ["k1", "k2"]
    key_clock.now += TTL  # expired: the next request waits for a fetch
    assert (await stage.identify_async(idp.token("k2"), False, directory)).user.id == "alice"
    assert idp.hits["jwks"] == 3


async def test_endpoint_down_fails_closed_and_says_so(stage, idp, directory, key_clock):
    token = idp.token("k1")
    assert (await stage.identify_async(token, False, directory)).user.id == "alice"
    idp.down = True
    key_clock.now += TTL  # the keys expire while the provider is down
    assert await refused(stage, token, directory) == "jwks-unavailable"  # even the cached token
    assert await refused(stage, idp.token("k1", "bob"), directory) == "jwks-unavailable"
    health = stage.health()
    assert health["degraded"] == ["identity-keys-unavailable"]
    assert health["key_sets"][0]["fresh"] is False and "503" in health["key_sets"][0]["last_error"]
    fetches = idp.hits["discovery"] + idp.hits["jwks"]
    assert await refused(stage, token, directory) == "jwks-unavailable"
    assert idp.hits["discovery"] + idp.hits["jwks"] == fetches  # no fetch per request while down
    idp.down = False
    key_clock.now += MIN_INTERVAL
    assert (await stage.identify_async(token, False, directory)).user.id == "alice"
    assert stage.health()["degraded"] == []


async def test_provider_down_at_start_refuses_every_token(stage, idp, directory):
    idp.down = True
    assert await refused(stage, idp.token("k1"), directory) == "jwks-unavailable"
    assert await refused(stage, idp.token("k1", "bob"), directory) == "jwks-unavailable"
    assert idp.hits == {"discovery": 1, "jwks": 0}


async def test_discovery_document_for_another_issuer_is_refused(stage, idp, directory):
    idp.claimed_issuer = "https://evil.example"
    assert await refused(stage, idp.token("k1"), directory) == "jwks-unavailable"
    assert idp.hits["jwks"] == 0
    assert "names issuer 'https://evil.example'" in stage.health()["key_sets"][0]["last_error"]


async def test_unusable_keys_in_the_set_are_skipped(stage, idp, directory):
    idp.extra_jwks = [
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0"},  # symmetric: never from a JWKS
        {**jwks_dict({"enc": idp.keys["k1"]})["keys"][0], "use": "enc"},
    ]
    assert (await stage.identify_async(idp.token("k1"), False, directory)).user.id == "alice"
    health = stage.health()["key_sets"][0]
    assert health["kids"] == ["k1"] and len(health["skipped"]) == 2
    assert await refused(stage, bearer(forged_hs256_with_kid("shared")), directory) == "token-algorithm"


def forged_hs256_with_kid(kid: str) -> str:
    return sign({"sub": "grace", "exp": int(time.time()) + 60}, "secret" * 6, "HS256", {"kid": kid})


async def test_synchronous_callers_are_refused_while_the_fetch_runs(stage, idp, directory):
    # authenticate_admin (console, alerts API) cannot await: 401 now, the keys are there next time.
    with pytest.raises(KeysNeeded) as info:
        stage.identify(idp.token("k1"), False, directory)
    assert info.value.reason == "jwks-unavailable"
    assert await asyncio.wrap_future(info.value.pending) is True
    assert stage.identify(idp.token("k1"), False, directory).user.id == "alice"


async def test_jwks_url_without_discovery(idp, tmp_path, directory):
    config = {"jwt": {"algorithms": ["RS256"], "jwks_url": f"{idp.issuer}/oauth2/keys", "issuer": idp.issuer}}
    stage = make_stage(config, tmp_path)
    assert (await stage.identify_async(idp.token("k1"), False, directory)).user.id == "alice"
    assert idp.hits == {"discovery": 0, "jwks": 1}
