"""Faults: each has a configured, documented behaviour (THREAT_MODEL.md, "Faults"), and none loses an
audit line silently.

* CRM down -> 502 upstream-unavailable; CRM slow -> 504 upstream-timeout (upstream.total_timeout);
  the audit line says so.
* rules: a syntax error, a half-written file, an emptied file, a deleted folder -> the last good
  rules stay, the error is reported; a change is loaded only once it has settled; a folder swapped
  (symlink) mid-load is not swapped in until it is stable; a symlink swap is picked up.
* audit disk full (/dev/full: every write fails with ENOSPC) -> the line goes to stderr and is
  counted; ``on_failure: deny`` refuses the next requests (503), ``allow`` serves them.
* clock jumps and DST: decisions are a pure function of the clock; time windows follow the zone's
  rules, skipped local hours match nothing, repeated ones match twice; a cached token is refused
  once the verifier's clock passes its exp.
Redis and alert-sink faults belong to tests/signals and tests/alerts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime, timedelta

import pytest

import gateway.rulestore as rulestore_module
from gateway.ruleset import revision_of
from gateway.rulestore import RuleStore
from tests.adversarial.conftest import bearer
from tests.adversarial.standin import Reply
from tests.adversarial.wire import exchange, request
from tests.conftest import PARIS, _free_port
from tests.policy.factories import make_criterion, make_ctx

ALICE = bearer("alice")


# --- CRM down and slow ------------------------------------------------------------------------------


async def test_crm_down_is_502_and_audited(make_gw, audit_lines):
    gw = await make_gw(upstream_url=f"http://127.0.0.1:{_free_port()}")
    answer = await exchange(gw.port, request("/api/customers/1", ALICE))
    assert answer.status == 502 and b"upstream-unavailable" in answer.body
    line = audit_lines()[-1]
    assert line["status"] == 502 and line["reason"] == "upstream-unavailable" and line["effect"] == "deny"


async def test_crm_slow_is_504_and_audited(make_gw, standin, audit_lines):
    gw = await make_gw(total_timeout=0.5)

    async def slow(seen):
        await asyncio.sleep(5)
        return Reply(200)

    standin.reply = slow
    answer = await exchange(gw.port, request("/api/customers/1", ALICE))
    assert answer.status == 504 and b"upstream-timeout" in answer.body
    assert audit_lines()[-1]["reason"] == "upstream-timeout"


# --- rules reload -----------------------------------------------------------------------------------


def settled_check(store: RuleStore):
    """Poll twice, as the watcher does over two intervals: the first sight only marks the change."""
    first = store.check()
    return first if first is not None else store.check()


def baseline(rules):
    return rules / "policies" / "00-baseline.yaml"


def test_syntax_error_keeps_the_last_good_rules(rules_copy):
    store, _ = RuleStore.open(rules_copy)
    revision = store.current.revision
    baseline(rules_copy).write_text(baseline(rules_copy).read_text() + "  - id: [unclosed\n")
    assert settled_check(store) is False
    assert store.current.revision == revision
    assert store.health()["last_reload_error"][0].startswith("rules/policies/00-baseline.yaml:")


@pytest.mark.parametrize("cut", [0, 1, 200, 700], ids=lambda n: f"first-{n}-bytes")
def test_half_written_file_keeps_the_last_good_rules(rules_copy, cut):
    store, _ = RuleStore.open(rules_copy)
    revision = store.current.revision
    text = baseline(rules_copy).read_bytes()
    baseline(rules_copy).write_bytes(text[:cut])
    assert settled_check(store) is False and store.current.revision == revision


def test_a_change_is_loaded_only_once_it_settled(rules_copy):
    """An editor truncates, then writes back: the first sight of the change is not loaded."""
    store, _ = RuleStore.open(rules_copy)
    revision = store.current.revision
    text = baseline(rules_copy).read_text()
    cut = text.index("  - id: baseline-deny-countries")  # still valid: only the first deny rule
    baseline(rules_copy).write_text(text[:cut])
    half = revision_of(rules_copy)
    assert store.check() is None  # seen once: not loaded
    baseline(rules_copy).write_text(text + "\n# edited\n")
    os.utime(baseline(rules_copy), ns=(1, 1))  # a different signature from the half-written one
    assert store.check() is None  # changed again: still settling
    assert store.check() is True  # stable for one interval: loaded, the full file
    assert store.current.revision not in (revision, half)
    assert store.current.revision == revision_of(rules_copy)  # the whole file, not the half


def test_rules_changed_while_loading_are_not_swapped_in(rules_copy, monkeypatch):
    store, _ = RuleStore.open(rules_copy)
    revision = store.current.revision
    real_load = rulestore_module.load_ruleset
    calls = []

    def load_then_edit(root):
        result = real_load(root)
        if not calls:  # the folder is replaced while the first load is running
            baseline(root).write_text(baseline(root).read_text() + "\n# replaced mid-load\n")
        calls.append(root)
        return result

    monkeypatch.setattr(rulestore_module, "load_ruleset", load_then_edit)
    baseline(rules_copy).write_text(baseline(rules_copy).read_text() + "\n# first edit\n")
    assert settled_check(store) is None and store.current.revision == revision  # loaded, then discarded
    assert settled_check(store) is True  # the settled files
    assert "replaced mid-load" in baseline(rules_copy).read_text()
    assert store.current.revision == revision_of(rules_copy)


def test_symlink_swap_of_the_rules_folder_is_picked_up(tmp_path, rules_copy):
    live = tmp_path / "live"
    v2 = tmp_path / "v2"
    shutil.copytree(rules_copy, v2)
    baseline(v2).write_text(baseline(v2).read_text() + "\n# v2\n")
    live.symlink_to(rules_copy)
    store, _ = RuleStore.open(live)
    before = store.current.revision
    tmp_link = tmp_path / "live.tmp"
    tmp_link.symlink_to(v2)
    os.replace(tmp_link, live)  # atomic swap, as a ConfigMap update does
    assert settled_check(store) is True and store.current.revision != before


def test_deleted_rules_folder_keeps_the_last_good_rules(rules_copy):
    store, _ = RuleStore.open(rules_copy)
    revision = store.current.revision
    shutil.rmtree(rules_copy)
    assert settled_check(store) is False and store.current.revision == revision


@pytest.mark.slow
async def test_broken_reload_under_a_running_gateway_keeps_deciding(make_gw, standin, rules_copy):
    gw = await make_gw(rules=rules_copy)
    baseline(rules_copy).write_text("format: crmgw.rules/v1\nrules: [")
    for _ in range(50):
        await asyncio.sleep(0.1)
        health = await (await gw.get("/_gw/health")).json()
        if health["rules"]["last_reload_error"]:
            break
    assert health["status"] == "degraded"
    answer = await exchange(gw.port, request("/api/customers?page_size=5000", ALICE))
    assert answer.status == 403  # the last good baseline still denies mass listing


# --- audit log: disk full ---------------------------------------------------------------------------


@pytest.fixture
def disk_full():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    return "/dev/full"


async def test_disk_full_refuses_requests_with_on_failure_deny(make_gw, standin, disk_full, capfd):
    gw = await make_gw(audit={"path": disk_full, "on_failure": "deny"})
    first = await exchange(gw.port, request("/api/customers/1", ALICE))
    assert first.status == 200  # decided before the disk refused its line...
    assert "AUDIT-UNWRITTEN" in capfd.readouterr().err  # ...which went to stderr, not nowhere
    second = await exchange(gw.port, request("/api/customers/1", ALICE))
    assert second.status == 503 and b"audit-unavailable" in second.body
    assert len(standin.seen) == 1
    from gateway.app import GATEWAY

    audit = gw.server.app[GATEWAY].audit
    assert audit.dropped == 2 and not audit.healthy


async def test_disk_full_keeps_serving_with_on_failure_allow(make_gw, standin, disk_full, capfd):
    gw = await make_gw(audit={"path": disk_full, "on_failure": "allow"})
    for _ in range(3):
        assert (await exchange(gw.port, request("/api/customers/1", ALICE))).status == 200
    assert capfd.readouterr().err.count("AUDIT-UNWRITTEN") == 3
    health = await (await gw.get("/_gw/health")).json()
    assert "audit-unwritable" in health["degraded"] and health["audit"]["dropped"] == 3


# --- clock jumps and daylight saving ----------------------------------------------------------------


async def status_at(gw, clock, when: datetime) -> int:
    clock.set(when)
    return (await exchange(gw.port, request("/api/customers/1", ALICE))).status


async def test_clock_jumps_change_decisions_immediately_both_ways(gw, clock):
    day = datetime(2026, 3, 3, tzinfo=PARIS)
    assert await status_at(gw, clock, day.replace(hour=17, minute=59)) == 200
    assert await status_at(gw, clock, day.replace(hour=18)) == 403  # jump forward out of hours
    assert await status_at(gw, clock, day.replace(hour=9)) == 200  # NTP steps back: in hours again
    assert await status_at(gw, clock, day - timedelta(days=300)) == 403  # a Sunday in 2025


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        ("2026-03-27T06:30:00", 403),  # Friday before the change: 07:30 CET
        ("2026-03-27T07:00:00", 200),  # 08:00 CET
        ("2026-03-30T05:59:00", 403),  # Monday after: 07:59 CEST
        ("2026-03-30T06:00:00", 200),  # 08:00 CEST (a fixed +01:00 would say 07:00)
        ("2026-03-30T15:59:00", 200),  # 17:59 CEST
        ("2026-03-30T16:00:00", 403),  # 18:00 CEST
        ("2026-10-23T06:00:00", 200),  # Friday before the autumn change: 08:00 CEST
        ("2026-10-26T06:59:00", 403),  # Monday after: 07:59 CET
        ("2026-10-26T07:00:00", 200),  # 08:00 CET
        ("2026-10-26T16:59:00", 200),  # 17:59 CET
    ],
)
async def test_office_hours_follow_daylight_saving(gw, clock, utc, expected):
    when = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert await status_at(gw, clock, when) == expected


NIGHT_WINDOW = 'time_window: {timezone: Europe/Paris, days: [sun], from: "02:00", to: "03:00"}'


def test_skipped_local_hour_matches_no_instant():
    window = make_criterion(NIGHT_WINDOW)
    start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # Sunday 29 March 00:00 CET
    minutes = [start + timedelta(minutes=m) for m in range(4 * 60)]
    assert not any(window.evaluate(make_ctx(now=t)) for t in minutes)


def test_repeated_local_hour_matches_both_times():
    window = make_criterion(NIGHT_WINDOW)
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, one hour later
    after = datetime(2026, 10, 25, 2, 0, tzinfo=UTC)  # 03:00 CET
    assert window.evaluate(make_ctx(now=first)) is True
    assert window.evaluate(make_ctx(now=second)) is True
    assert window.evaluate(make_ctx(now=after)) is False


def test_cached_token_is_refused_once_the_clock_passes_exp():
    from gateway.errors import Unauthenticated
    from gateway.identity.config import JwtKeys
    from gateway.identity.devkeys import DEV_JWT_SECRET, mint_token
    from gateway.identity.keys import KeyMaterial
    from gateway.identity.verifier import JwtVerifier

    now = [1_900_000_000.0]
    cfg = JwtKeys(algorithms=["HS256"], secret=DEV_JWT_SECRET, issuer="crmgw-dev", audience="crm", leeway_seconds=30)
    verifier = JwtVerifier(cfg, KeyMaterial(secret=DEV_JWT_SECRET.encode()), clock=lambda: now[0])
    token = mint_token("alice", ttl_seconds=60, now=now[0])
    with pytest.raises(Unauthenticated):  # PyJWT checks exp against the real clock: far future
        verifier.verify(token)
    real = mint_token("alice", ttl_seconds=60)
    now[0] = __import__("time").time()
    assert verifier.verify(real)["sub"] == "alice"  # now cached
    now[0] += 3600  # the clock jumps an hour ahead
    with pytest.raises(Unauthenticated, match="token-expired"):
        verifier.verify(real)
