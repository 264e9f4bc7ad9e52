"""Labelled attacks injected into simulated traffic, on top of the victim's ordinary day.

Each scenario is one incident (one user, one start); the label file has one line per user and UTC
day the incident touches: ``{user, day, scenario, start, end, incident, difficulty}``. The six
original scenarios are ``standard``; the attacks that look like work (detectors.hardscenarios)
are ``easy``, ``medium`` or ``hard``, drawn per incident unless ``Simulation.difficulty`` fixes it. Recall is measured per
incident; PR-AUC and false alerts per user-day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

from detectors.hardscenarios import HARD_SCENARIOS, LEVELS
from detectors.simsurprises import persona
from detectors.simtraffic import _action, delete_events, export_event
from detectors.simulate import Event, Simulation, SimUser, _ip, local_epoch

BASIC_SCENARIOS = (
    "burst_export",
    "slow_export",
    "mass_delete",
    "enumeration",
    "offhours_new_country",
    "impossible_travel",
)
SCENARIOS = BASIC_SCENARIOS + HARD_SCENARIOS
# far-away countries a stolen session or a hired hand might come from, with an address octet
ELSEWHERE = (
    ("RU", 95),
    ("NG", 105),
    ("BR", 177),
    ("UA", 91),
    ("VN", 113),
    ("RO", 86),
    ("TR", 78),
    ("IN", 49),
    ("ZA", 41),
    ("AR", 181),
)
TOOLS = ("python-requests/2.31.0", "curl/8.5.0", "Go-http-client/1.1")


def _work_time(sim: Simulation, user: SimUser, day: int) -> float:
    h = sim.rng.uniform(user.start_hour + 1.0, user.start_hour + user.hours - 1.5)
    return local_epoch(sim.date(day), h, user.site.tz)


def _home(user: SimUser) -> tuple[str, str]:
    return user.office_ip, user.site.country


def burst_export(sim: Simulation, user: SimUser, day: int) -> list[Event]:
    rng, t = sim.rng, _work_time(sim, user, day)
    total, calls = rng.randint(2000, 6000), rng.randint(3, 8)
    return [
        export_event(sim, user, t + i * rng.uniform(200, 400), _home(user), user.user_agent(day), total // calls)
        for i in range(calls)
    ]


def slow_export(sim: Simulation, user: SimUser, day: int) -> list[Event]:
    rng, out, d = sim.rng, [], day
    per_day = {"sales_rep": (120, 300), "support_agent": (100, 250)}.get(user.role, (250, 600))
    for _ in range(rng.randint(4, 7)):
        while sim.date(d).weekday() >= 5:
            d += 1
        if d >= sim.days:
            break
        t, n = _work_time(sim, user, d), rng.randint(*per_day)
        parts = rng.randint(1, 2)
        out += [
            export_event(sim, user, t + i * 1800, _home(user), user.user_agent(d), n // parts) for i in range(parts)
        ]
        d += 1
    return out


def mass_delete(sim: Simulation, user: SimUser, day: int) -> list[Event]:
    rng, t = sim.rng, _work_time(sim, user, day)
    ua, where = user.user_agent(day), _home(user)
    if rng.random() < 0.6:
        out = []
        for i in range(rng.randint(2, 6)):
            out += delete_events(sim, user, t + i * 120, where, ua, rng.randint(20, 100), True)
        return out
    return delete_events(sim, user, t, where, ua, rng.randint(40, 150), False)


def enumeration(sim: Simulation, user: SimUser, day: int) -> list[Event]:
    rng, t = sim.rng, _work_time(sim, user, day)
    resource = "customers" if rng.random() < 0.7 else "contacts"
    rid, out = rng.randint(1, sim.n_customers), []
    for i in range(rng.randint(150, 600)):
        ok = rng.random() > 0.1
        out.append(
            Event(
                ts=t,
                user=user,
                ip=user.office_ip,
                country=user.site.country,
                ua=user.user_agent(day),
                method="GET",
                path=f"/api/{resource}/{rid + i}",
                operation=f"{resource}.view",
                status=200 if ok else 404,
                returned=1 if ok else 0,
                ids=(rid + i,) if ok else (),
                resource_id=str(rid + i),
            )
        )
        t += rng.uniform(3, 15)
    return out


def _foreign(sim: Simulation, user: SimUser) -> tuple[str, str]:
    seen = {user.site.country} | {trip[2] for trip in user.trips}
    country, octet = sim.rng.choice([c for c in ELSEWHERE if c[0] not in seen])
    return _ip(sim.rng, octet), country


def offhours_new_country(sim: Simulation, user: SimUser, day: int) -> list[Event]:
    rng = sim.rng
    t = local_epoch(sim.date(day), rng.uniform(0.5, 4.5), user.site.tz)
    where = _foreign(sim, user)
    ua = rng.choice(TOOLS) if rng.random() < 0.6 else user.user_agent(day)
    out = []
    for _ in range(rng.randint(15, 80)):
        name = rng.choice(("list_customers", "view_customer", "list_deals", "view_contact"))
        out.append(_action(sim, user, name, t, where, ua))
        t += rng.uniform(10, 90)
    if rng.random() < 0.5:
        out.append(export_event(sim, user, t, where, ua, rng.randint(50, 300)))
    return out


def impossible_travel(sim: Simulation, user: SimUser, day: int) -> list[Event]:
    rng, t = sim.rng, _work_time(sim, user, day)
    ua = user.user_agent(day)
    out = [_action(sim, user, "view_customer", t - 1800 + i * 300, _home(user), ua) for i in range(3)]
    where = _foreign(sim, user)
    t += rng.uniform(300, 2400)
    for _ in range(rng.randint(5, 30)):
        out.append(_action(sim, user, rng.choice(("list_customers", "view_customer")), t, where, ua))
        t += rng.uniform(20, 120)
    return out


Injector = Callable[[Simulation, SimUser, int], list[Event]]  # (sim, victim, day) -> the attack's requests
LevelledInjector = Callable[[Simulation, SimUser, int, str], list[Event]]  # ... at a difficulty level
INJECTORS: dict[str, Injector] = {name: globals()[name] for name in BASIC_SCENARIOS}


def _levelled() -> dict[str, LevelledInjector]:
    from detectors import hardscenarios

    return {name: getattr(hardscenarios, name) for name in HARD_SCENARIOS}


SPAN = {"spread_export": 15, "departing_employee": 15, "compromised_account": 5, "slow_export": 10}


def _eligible(sim: Simulation, user: SimUser, day: int) -> bool:
    return (
        user.role != "reporting_service"
        and day >= user.first_day + 7
        and sim.date(day).weekday() < 5
        and day not in user.leave
    )


def inject_all(sim: Simulation) -> tuple[list[Event], list[dict[str, str]]]:
    rng = sim.rng
    events: list[Event] = []
    labels: list[dict[str, str]] = []
    used: set[tuple[str, int]] = set()
    humans = [u for u in sim.users if u.role != "reporting_service"]
    if sim.days < 8 or not humans:
        return [], []
    levelled = _levelled()
    for scenario in SCENARIOS:
        for k in range(sim.incidents):
            for _attempt in range(50):
                user, day = rng.choice(humans), rng.randint(7, sim.days - 1)
                span = SPAN.get(scenario, 1)
                if _eligible(sim, user, day) and not any((user.id, day + k) in used for k in range(span)):
                    user = persona(sim, user, day)
                    break
            else:
                continue
            if scenario in levelled:
                level = sim.difficulty.get(scenario) or rng.choice(LEVELS)
                injected = levelled[scenario](sim, user, day, level)
            else:
                level, injected = "standard", INJECTORS[scenario](sim, user, day)
            if not injected:
                continue
            incident = f"{scenario}-{k:03d}"
            by_day: dict[str, list[float]] = defaultdict(list)
            for ev in injected:
                by_day[_utc_day(ev.ts)].append(ev.ts)
            last = day + (max(ev.ts for ev in injected) - min(ev.ts for ev in injected)) // 86400 + 1
            for d in range(day - 1, int(last) + 9):
                used.add((user.id, d))
            for utc_day in sorted(by_day):
                times = by_day[utc_day]
                labels.append(
                    {
                        "user": user.id,
                        "day": utc_day,
                        "scenario": scenario,
                        "start": _iso(min(times)),
                        "end": _iso(max(times)),
                        "incident": incident,
                        "difficulty": level,
                    }
                )
            events.extend(injected)
    return events, labels


def _utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
