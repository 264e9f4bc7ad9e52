"""Attacks that look like work and benign surprises: difficulty knobs do what they say."""

from __future__ import annotations

import orjson

from detectors import hardscenarios
from detectors.features import FEATURE_NAMES, compute
from detectors.replay import Aggregator
from detectors.simsurprises import persona
from detectors.simulate import Simulation
from tests.detectors.conftest import at, record


def _sim(seed=3):
    return Simulation(30, 40, seed, incidents=1)


def _victim(sim):
    return next(u for u in sim.users if u.role == "sales_rep")


def test_harder_spread_exports_are_smaller_each_day():
    sizes = {}
    for level in hardscenarios.LEVELS:
        sim = _sim()
        events = hardscenarios.spread_export(sim, _victim(sim), 5, level)
        assert len({int(e.ts // 86400) for e in events}) >= 6  # spread over at least six days
        sizes[level] = max(e.returned for e in events)
    assert sizes["hard"] < sizes["medium"] < sizes["easy"]


def test_a_compromised_account_keeps_the_owners_hours_but_not_their_records():
    sim = _sim()
    user = _victim(sim)
    events = hardscenarios.compromised_account(sim, user, 8, "hard")
    outside = [e for e in events if e.ids and e.ids[0] not in set(user.visible)]
    assert len(outside) > 0.8 * len(events)
    assert {e.ip for e in events} == {user.home_ip}  # hard: the owner's own home network


def test_slow_enumeration_walks_at_human_pace():
    sim = _sim()
    events = hardscenarios.slow_enumeration(sim, _victim(sim), 8, "medium")
    minutes = (max(e.ts for e in events) - min(e.ts for e in events)) / 60
    assert minutes > 60 and len(events) / minutes < 2.5  # a person clicking, not a script


def test_a_departing_employee_ramps_up():
    sim = _sim()
    events = [
        e for e in hardscenarios.departing_employee(sim, _victim(sim), 5, "easy") if e.operation.endswith("export")
    ]
    assert events[-1].returned > 2 * events[0].returned and events[-1].returned == max(e.returned for e in events)


def test_labels_carry_the_difficulty_and_a_fixed_knob_is_used(tmp_path):
    sim = Simulation(30, 40, 4, incidents=2, difficulty={"spread_export": "hard"})
    sim.write(tmp_path)
    labels = [orjson.loads(x) for x in (tmp_path / "labels.jsonl").read_bytes().splitlines()]
    assert {x["difficulty"] for x in labels if x["scenario"] == "spread_export"} == {"hard"}
    assert {x["difficulty"] for x in labels if x["scenario"] == "mass_delete"} == {"standard"}


def test_role_changes_and_a_reorganised_team_are_new_personas():
    sim = Simulation(120, 40, 5, incidents=1)
    changed = [(uid, ch) for uid, ch in sim.changes.items()]
    assert changed
    moved = [(u, ch[0]) for u in sim.users for uid, ch in changed if uid == u.id]
    assert any(new.role != u.role for u, (_, new) in moved)  # a role change
    assert any(new.team.endswith("-reorg") for _, (_, new) in moved)  # the reorganised team
    u, (day, new) = moved[0]
    assert persona(sim, u, day - 1) is u and persona(sim, u, day) is new


def test_records_never_touched_before_count_as_unfamiliar():
    agg = Aggregator()
    for d in range(2, 6):
        agg.add(record("alice", at(d, 9), returned=5, ids=(1, 2, 3, 4, 5)))
    agg.add(record("alice", at(9, 9), returned=4, ids=(1, 2, 900, 901)))
    f = dict(zip(FEATURE_NAMES, compute(agg.windows["alice"], agg.history["alice"], None)))
    assert agg.windows["alice"].unfamiliar == 2
    assert f["unfamiliar_records"] > 0


def test_a_country_colleagues_work_from_is_not_a_new_country_signal():
    agg = Aggregator()
    for colleague in ("bob", "carol"):  # two colleagues have worked from Germany
        agg.add(record(colleague, at(2, 9), country="DE", ip="84.1.2.3"))
    agg.add(record("alice", at(2, 9)))
    for colleague in ("bob", "carol", "alice"):
        agg.add(record(colleague, at(3, 9)))
    agg.add(record("alice", at(3, 10), country="DE", ip="84.1.2.3"))
    agg.add(record("alice", at(3, 11), country="RU", ip="95.1.2.3"))
    w = agg.windows["alice"]
    assert w.new_countries == {"DE", "RU"}
    assert w.new_country_requests == 1  # RU only: nobody in the company works from there

    live = Aggregator()  # a live per-user aggregator learns the peers from the model's history
    live.load_peers(agg.state())
    assert not live.rare_country("DE", "alice") and live.rare_country("RU", "alice")
