"""Attacks that look like work, each with a difficulty knob (``easy`` | ``medium`` | ``hard``).

- ``spread_export``: the same data leaves a little at a time, one export a working day for one to
  two weeks, each under what the role exports on an ordinary day;
- ``slow_enumeration``: walking through record ids at human pace (a view every 30-120 s), mixed
  with the user's normal views, over the whole working day;
- ``compromised_account``: a stolen session that keeps the owner's hours and volume but reads
  records the owner never works on, from a network the owner never used (``hard``: from the
  owner's own home network and browser, as malware on their laptop would);
- ``departing_employee``: two weeks of slowly growing reads and exports before leaving.

Harder levels are smaller, slower or closer to the owner's habits; the level is in the label
(``difficulty``) so the evaluation reports recall per level.
"""

from __future__ import annotations

from detectors.simtraffic import MIX, _action, customer_view, export_event
from detectors.simulate import Event, Simulation, SimUser, _ip, local_epoch

HARD_SCENARIOS = ("spread_export", "slow_enumeration", "compromised_account", "departing_employee")
LEVELS = ("easy", "medium", "hard")


def _weekdays(sim: Simulation, day: int, n: int) -> list[int]:
    out: list[int] = []
    d = day
    while len(out) < n and d < sim.days:
        if sim.date(d).weekday() < 5:
            out.append(d)
        d += 1
    return out


def _office(user: SimUser) -> tuple[str, str]:
    return user.office_ip, user.site.country


def _at(sim: Simulation, user: SimUser, day: int, lo: float = 0.5, hi: float = 1.0) -> float:
    h = sim.rng.uniform(user.start_hour + lo, user.start_hour + user.hours - hi)
    return local_epoch(sim.date(day), h, user.site.tz)


def spread_export(sim: Simulation, user: SimUser, day: int, level: str) -> list[Event]:
    rng = sim.rng
    per_day = {"easy": (150, 400), "medium": (60, 180), "hard": (25, 90)}[level]
    if user.role in ("sales_manager", "admin"):
        per_day = (per_day[0] * 2, per_day[1] * 2)
    days = _weekdays(sim, day, rng.randint(6, 10))
    return [
        export_event(sim, user, _at(sim, user, d), _office(user), user.user_agent(d), rng.randint(*per_day))
        for d in days
    ]


def slow_enumeration(sim: Simulation, user: SimUser, day: int, level: str) -> list[Event]:
    rng = sim.rng
    views = {"easy": (200, 320), "medium": (90, 180), "hard": (40, 80)}[level]
    step_max = {"easy": 1, "medium": 2, "hard": 3}[level]
    resource = "customers" if rng.random() < 0.7 else "contacts"
    rid = rng.randint(1, sim.n_customers)
    t = _at(sim, user, day, 0.0, user.hours - 0.5)
    ua, out = user.user_agent(day), []
    names = [a for a, _ in MIX.get(user.role, MIX["sales_rep"])]
    for _ in range(rng.randint(*views)):
        ok = rng.random() > 0.15
        out.append(
            Event(
                ts=t,
                user=user,
                ip=user.office_ip,
                country=user.site.country,
                ua=ua,
                method="GET",
                path=f"/api/{resource}/{rid}",
                operation=f"{resource}.view",
                status=200 if ok else 404,
                returned=1 if ok else 0,
                ids=(rid,) if ok else (),
                resource_id=str(rid),
            )
        )
        if rng.random() < 0.3:  # a normal request in between
            out.append(_action(sim, user, rng.choice(names), t + rng.uniform(5, 20), _office(user), ua))
        rid += rng.randint(1, step_max)
        t += rng.uniform(30, 120)
    return out


def compromised_account(sim: Simulation, user: SimUser, day: int, level: str) -> list[Event]:
    rng = sim.rng
    if level == "hard":
        where, ua = (user.home_ip, user.site.country), user.user_agent(day)
    else:
        where = (_ip(rng, user.site.home_prefix), user.site.country)  # same country, a new address
        ua = user.user_agent(day) if level == "medium" else "Mozilla/5.0 (X11; Linux x86_64) Firefox/115.0"
    out: list[Event] = []
    for d in _weekdays(sim, day, rng.randint(1, 3)):
        t = _at(sim, user, d)
        n = rng.randint(20, 45)  # the owner's usual volume, the owner's hours
        for _ in range(n):
            rid = rng.randint(1, sim.n_customers)  # records of the whole company, not the owner's
            out.append(customer_view(t, user, where, ua, rid))
            t += rng.uniform(60, 600)
        if level == "easy":
            out.append(export_event(sim, user, t, where, ua, rng.randint(150, 400)))
    return out


def departing_employee(sim: Simulation, user: SimUser, day: int, level: str) -> list[Event]:
    rng = sim.rng
    top = {"easy": 1500, "medium": 500, "hard": 200}[level]
    days = _weekdays(sim, day, 10)
    out: list[Event] = []
    for k, d in enumerate(days):
        share = (k + 1) / len(days)  # ramps up to the last day
        t, ua = _at(sim, user, d), user.user_agent(d)
        if rng.random() < 0.3 + 0.7 * share:
            out.append(export_event(sim, user, t, _office(user), ua, max(10, int(top * share * share))))
        for i in range(int(25 * share)):  # browsing more of the book as the date comes closer
            out.append(_action(sim, user, "list_customers", t + 60 * (i + 1), _office(user), ua))
    return out
