"""A real OpenID Connect provider for tests (aiohttp, run with ``aiohttp_server``): a discovery
document and a JWKS whose keys a test rotates, breaks or slows down, with a count of fetches."""

from __future__ import annotations

import asyncio
import time

import jwt
from aiohttp import web

from .conftest import jwks_dict


class IdentityProvider:
    """An OIDC provider: a discovery document and a JWKS whose keys the test rotates."""

    def __init__(self, keys: dict):
        self.keys = dict(keys)  # kid -> private key; the JWKS publishes the public halves
        self.extra_jwks: list[dict] = []  # raw entries published besides them
        self.issuer = ""
        self.claimed_issuer: str | None = None  # what the discovery document says, when not issuer
        self.hits = {"discovery": 0, "jwks": 0}
        self.down = False
        self.gate: asyncio.Event | None = None  # when set, the JWKS answer waits for it
        self.reached = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/oauth2/keys", self.jwks)
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        self.hits["discovery"] += 1
        if self.down:
            return web.Response(status=503)
        issuer = self.claimed_issuer or self.issuer
        return web.json_response({"issuer": issuer, "jwks_uri": f"{self.issuer}/oauth2/keys"})

    async def jwks(self, request: web.Request) -> web.Response:
        self.hits["jwks"] += 1
        self.reached.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            return web.Response(status=503)
        doc = jwks_dict(self.keys)
        doc["keys"] += self.extra_jwks
        return web.json_response(doc)

    def token(self, kid: str, user: str = "alice", key=None) -> dict[str, str]:
        now = int(time.time())
        claims = {"sub": user, "iss": self.issuer, "aud": "crm", "iat": now, "exp": now + 600}
        return {
            "Authorization": "Bearer "
            + jwt.encode(claims, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})
        }
