"""The console behind a reverse proxy: the Host the browser used and the scheme a trusted proxy says.

deploy/entry-nginx.conf passes ``Host $http_host`` and ``X-Forwarded-Proto $scheme``; the origin
check compares the POST's Origin with ``<scheme>://<Host>``. X-Forwarded-Proto is believed only from
a peer in ``trusted_proxies`` (the test client connects from 127.0.0.1).
"""

from __future__ import annotations

import pytest

from gateway.identity.devkeys import mint_token
from tests.console.conftest import CSRF, build_console

LOGIN = "/_gw/console/login"


async def post_login(client, origin: str, proto: str | None):
    page = await client.get(LOGIN, headers={"X-Forwarded-Proto": proto} if proto else {})
    token = CSRF.search(await page.text()).group(1)
    headers = {"Origin": origin, **({"X-Forwarded-Proto": proto} if proto else {})}
    # A Secure nonce cookie is what a browser on https sends back; the test client talks plain http.
    nonce = {"crmgw_console_login": page.cookies["crmgw_console_login"].value}
    return await client.post(
        LOGIN,
        data={"csrf": token, "token": mint_token("heidi"), "next": ""},
        headers=headers,
        cookies=nonce,
        allow_redirects=False,
    )


@pytest.mark.parametrize(
    "trusted, proto, scheme, status",
    [
        (["127.0.0.1/32"], "https", "https", 303),  # TLS ended at the trusted proxy: https origin
        (["127.0.0.1/32"], "https", "http", 403),  # ... then an http origin is another site
        (["127.0.0.1/32"], "http", "http", 303),  # the entry of docker-compose.yml (plain http)
        (["127.0.0.1/32"], None, "http", 303),  # no header: the connection's own scheme
        ([], "https", "https", 403),  # an untrusted peer cannot claim https
        ([], "https", "http", 303),
    ],
)
async def test_the_origin_check_uses_a_trusted_proxys_scheme(
    aiohttp_client, crm, tmp_path, clock, redis_url, trusted, proto, scheme, status
):
    client = await build_console(aiohttp_client, crm, tmp_path, clock, redis_url, trusted_proxies=trusted)
    resp = await post_login(client, f"{scheme}://{client.make_url('').host}:{client.make_url('').port}", proto)
    assert resp.status == status, await resp.text()


async def test_cookies_are_secure_when_the_trusted_proxy_says_https(aiohttp_client, crm, tmp_path, clock, redis_url):
    client = await build_console(aiohttp_client, crm, tmp_path, clock, redis_url, trusted_proxies=["127.0.0.1/32"])
    url = client.make_url("")
    resp = await post_login(client, f"https://{url.host}:{url.port}", "https")
    assert resp.status == 303
    assert resp.cookies["crmgw_console"]["secure"]
    resp = await post_login(client, f"http://{url.host}:{url.port}", "http")
    assert resp.status == 303
    assert not resp.cookies["crmgw_console"]["secure"]
