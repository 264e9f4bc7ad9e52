"""The operator's header settings: upstream.forward_headers and client_address_header, refused at load
with a message naming the header and why, never silently ignored."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from gateway.identity.devkeys import DEV_IDENTITY_CONFIG
from gateway.settings import Settings, load_settings
from tests.conftest import RULES


def settings(*, forward=None, upstream=None, **extra) -> Settings:
    up = {"url": "http://crm:1", **(upstream or {})}
    if forward is not None:
        up["forward_headers"] = forward
    data = {"upstream": up, "identity": DEV_IDENTITY_CONFIG.model_dump(), **extra}
    return Settings.model_validate(data)


def test_defaults_forward_nothing_extra_and_read_x_forwarded_for():
    s = settings()
    assert s.upstream.forward_headers == [] and s.client_address_header == "X-Forwarded-For"


def test_operator_headers_load():
    s = settings(forward=["X-Tenant", "X-CSRF-Token", "Origin", "If-Match-Version"])
    assert s.upstream.forward_headers == ["X-Tenant", "X-CSRF-Token", "Origin", "If-Match-Version"]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Connection", "hop-by-hop"),
        ("Transfer-Encoding", "hop-by-hop"),
        ("te", "hop-by-hop"),
        ("Upgrade", "hop-by-hop"),
        ("Proxy-Authorization", "hop-by-hop"),
        ("Host", "framing"),
        ("Content-Length", "framing"),
        ("Expect", "framing"),
        ("Authorization", "CRM's own login"),
        ("Cookie", "CRM's own login"),
        ("X-Forwarded-For", "network position"),
        ("Forwarded", "network position"),
        ("X-Real-IP", "network position"),
        ("X-Original-URL", "original request"),
        ("Remote-User", "original request"),
        ("X-Request-Id", "request id"),
        ("X-HTTP-Method-Override", "method override"),
        ("Range", "response filter"),
        ("If-None-Match", "response filter"),
        ("Content-Encoding", "already decoded"),
    ],
)
def test_names_the_gateway_never_forwards_are_refused(name, why):
    with pytest.raises(ValidationError, match=rf"upstream\.forward_headers[\s\S]*{name!r} cannot be forwarded.*{why}"):
        settings(forward=["X-Tenant", name])


@pytest.mark.parametrize(
    ("upstream", "name", "why"),
    [
        ({}, "X-CRM-User", "identity_headers"),
        ({}, "x-crm-roles", "identity_headers"),
        ({"identity_headers": {"user": "X-Remote-Login", "email": "X-Mail"}}, "X-Mail", "identity_headers"),
        ({"credential": {"header": "X-Service-Token", "value": "s"}}, "X-Service-Token", "credential"),
    ],
)
def test_headers_the_gateway_writes_cannot_be_forwarded_from_clients(upstream, name, why):
    with pytest.raises(ValidationError, match=rf"{name!r} cannot be forwarded from clients: {why}"):
        settings(forward=[name], upstream=upstream)


@pytest.mark.parametrize("name", ["X-API-Key", "X-Authenticated-User"])
def test_credentials_the_gateway_reads_cannot_be_forwarded(name):
    with pytest.raises(ValidationError, match=rf"identity\n.*credential the gateway reads: {name!r}"):
        settings(forward=[name])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("X Tenant", "not a header name"),
        ("X-Tenant:", "not a header name"),
        ("", "not a header name"),
        ("X_Tenant", "spell it with '-'"),
    ],
)
def test_forward_headers_must_be_header_names(name, message):
    with pytest.raises(ValidationError, match=message):
        settings(forward=[name])


@pytest.mark.parametrize("name", ["X-Forwarded-For", "Forwarded", "X-Real-IP", "True-Client-IP", "X-Client-Address"])
def test_client_address_header_takes_any_header_name(name):
    assert settings(client_address_header=name).client_address_header == name


@pytest.mark.parametrize(
    ("name", "message"),
    [("Connection", "hop-by-hop"), ("X_Real_IP", "spell it with '-'"), ("X Real IP", "not a header name")],
)
def test_client_address_header_refuses_what_a_proxy_cannot_write(name, message):
    with pytest.raises(ValidationError, match=message):
        settings(client_address_header=name)


def test_client_address_header_cannot_also_be_forwarded():
    with pytest.raises(ValidationError, match="'X-Client-Address' is also in upstream.forward_headers"):
        settings(forward=["X-Client-Address"], client_address_header="X-Client-Address")


def test_load_settings_reports_every_problem_with_file_and_line(tmp_path):
    identity = yaml.safe_dump({"identity": DEV_IDENTITY_CONFIG.model_dump(mode="json", exclude_defaults=True)})
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "upstream:\n"
        "  url: http://crm:1\n"
        "  forward_headers: [X-Tenant, X-Forwarded-Host, Connection]\n"  # line 3
        f"rules_dir: {RULES}\n"
        f"audit: {{path: {tmp_path / 'audit.log'}}}\n"
        "client_address_header: X_Real_IP\n" + identity  # line 6
    )
    loaded, errors = load_settings(path)
    assert loaded is None
    by_line = {e.line: str(e) for e in errors}
    assert by_line[3].startswith(f"{path}:3:") and "upstream.forward_headers" in by_line[3]
    assert "'X-Forwarded-Host' cannot be forwarded from clients" in by_line[3]
    assert "'Connection' cannot be forwarded from clients: a hop-by-hop header" in by_line[3]
    assert "client_address_header: " in by_line[6] and "spell it with '-'" in by_line[6]
