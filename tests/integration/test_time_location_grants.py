"""Acceptance 4-7: time windows across DST, networks and countries, exports and grants, off-boarding."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.integration.conftest import auth

UTC = UTC


@pytest.mark.parametrize(
    ("instant_utc", "allowed"),
    [
        # Friday 27 March 2026, Paris is UTC+1 (winter time)
        (datetime(2026, 3, 27, 16, 59, tzinfo=UTC), True),  # 17:59 local
        (datetime(2026, 3, 27, 17, 30, tzinfo=UTC), False),  # 18:30 local
        # Monday 30 March 2026, after the switch on the 29th: Paris is UTC+2
        (datetime(2026, 3, 30, 15, 59, tzinfo=UTC), True),  # 17:59 local
        (datetime(2026, 3, 30, 16, 30, tzinfo=UTC), False),  # 18:30 local (17:30 if DST were ignored)
    ],
)
async def test_rep_reads_customers_only_in_office_hours_dst_correct(gw, clock, instant_utc, allowed):
    clock.set(instant_utc)
    resp = await gw.get("/api/customers?page_size=5", headers=auth("alice"))
    if allowed:
        assert resp.status == 200, await resp.text()
    else:
        assert resp.status == 403
        body = await resp.json()
        assert body["reason"] == "time-window-outside"
        assert body["rule"]


async def test_manager_is_not_bound_by_the_reps_time_window(gw, clock):
    clock.set(datetime(2026, 3, 30, 16, 30, tzinfo=UTC))
    resp = await gw.get("/api/customers?page_size=5", headers=auth("dave"))
    assert resp.status == 200


@pytest.mark.parametrize(
    ("ip", "reason"),
    [("8.8.8.8", "source-ip-unauthorized"), ("175.45.176.1", "country-denied")],
)
async def test_request_from_outside_networks_or_denied_country_is_refused(gw, ip, reason):
    resp = await gw.get("/api/customers?page_size=5", headers=auth("dave", ip=ip))
    assert resp.status == 403
    body = await resp.json()
    assert body["reason"] == reason


async def test_partner_office_network_is_allowed(gw):
    resp = await gw.get("/api/customers?page_size=5", headers=auth("dave", ip="198.51.100.7"))
    assert resp.status == 200


@pytest.mark.parametrize(("user", "mfa", "status"), [("carol", False, 403), ("dave", False, 403), ("grace", True, 200)])
async def test_export_only_for_the_roles_the_rules_name(gw, user, mfa, status):
    resp = await gw.get("/api/customers/export.csv", headers=auth(user, mfa=mfa))
    assert resp.status == status, await resp.text()


async def test_export_grant_works_until_its_end_and_not_after(gw, clock):
    clock.set(datetime(2027, 1, 29, 10, 0, tzinfo=UTC))  # a Friday, inside alice's grant
    resp = await gw.get("/api/customers/export.csv", headers=auth("alice"))
    assert resp.status == 200, await resp.text()
    clock.set(datetime(2027, 2, 1, 10, 0, tzinfo=UTC))  # a Monday, after the grant ended
    resp = await gw.get("/api/customers/export.csv", headers=auth("alice"))
    assert resp.status == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/customers"),
        ("GET", "/api/customers/1"),
        ("GET", "/api/deals"),
        ("POST", "/api/customers"),
        ("GET", "/api/nowhere"),
    ],
)
async def test_offboarded_users_valid_token_is_refused_everywhere(gw, tmp_path, method, path):
    resp = await gw.request(method, path, headers=auth("ivan"), json={} if method == "POST" else None)
    assert resp.status == 403
    assert (await resp.json())["reason"] == "user-inactive"
    last = json.loads((tmp_path / "audit.log").read_text().splitlines()[-1])
    assert (last["user"], last["effect"], last["reason"]) == ("ivan", "deny", "user-inactive")
