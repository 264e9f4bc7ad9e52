"""One simulated user's benign day: when they work, from where, and what they ask the CRM for.

Kept apart from detectors.simulate (the population and the file writer) so each stays readable.
The habits here are the benign noise the detector must tolerate: evening and weekend sessions,
remote days, mobile networks, trips, month-end exports, occasional deletes and clean-ups.
"""

from __future__ import annotations

import calendar
import random
from datetime import date
from typing import TypedDict

from detectors.calendar import is_holiday
from detectors.simsurprises import persona
from detectors.simulate import Event, Simulation, SimUser, _ip, local_epoch

Place = tuple[str, str]  # (client ip, country) a request comes from


class _Sender(TypedDict):
    """The Event fields every request of one user from one place shares."""

    user: SimUser
    ip: str
    country: str
    ua: str


class _TimedSender(_Sender):
    ts: float


# (action, weight) per role; see _action for what each does
MIX = {
    "sales_rep": (
        ("list_customers", 3),
        ("view_customer", 6),
        ("list_deals", 2),
        ("view_deal", 3),
        ("list_contacts", 1),
        ("view_contact", 2),
        ("update_customer", 1.5),
        ("create_customer", 0.3),
    ),
    "sales_manager": (
        ("list_customers", 4),
        ("view_customer", 5),
        ("list_deals", 4),
        ("view_deal", 3),
        ("list_contacts", 1),
        ("view_contact", 1),
        ("update_customer", 0.7),
    ),
    "admin": (("admin", 3), ("list_customers", 2), ("view_customer", 3), ("list_deals", 1), ("update_customer", 0.5)),
    "support_agent": (
        ("view_customer", 5),
        ("view_contact", 4),
        ("list_contacts", 1.5),
        ("update_customer", 1.5),
        ("list_customers", 1),
    ),
}
DAILY = {"sales_rep": (18, 40), "sales_manager": (22, 45), "admin": (12, 28), "support_agent": (35, 60)}


def is_month_end(day: date) -> bool:
    """The last two weekdays of the month: when managers export their pipeline."""
    last = calendar.monthrange(day.year, day.month)[1]
    weekdays = [d for d in range(last, last - 7, -1) if date(day.year, day.month, d).weekday() < 5][:2]
    return day.day in weekdays


def _where(sim: Simulation, user: SimUser, day: int) -> tuple[str, str, str, bool]:
    """(ip, country, time zone of the working day, abroad) for the user on that day."""
    for first, length, country, tz, ip in user.trips:
        if first <= day < first + length:
            return ip, country, tz, True
    rng = sim.rng
    if user.mobile and rng.random() < 0.12:
        return _ip(rng, rng.choice((37, 46, 176, 188))), user.site.country, user.site.tz, False
    if rng.random() < user.remote_share:
        return user.home_ip, user.site.country, user.site.tz, False
    return user.office_ip, user.site.country, user.site.tz, False


def _page(rng: random.Random, user: SimUser, sim: Simulation, size: int) -> tuple[int, ...]:
    if user.visible:
        return tuple(rng.sample(user.visible, min(size, len(user.visible))))
    return tuple(rng.sample(range(1, sim.n_customers + 1), size))


def _related(rng: random.Random, user: SimUser, sim: Simulation, size: int) -> tuple[int, ...]:
    """Deals and contacts: a rep's are those of their own customers (ids 3*customer + 0..2)."""
    if user.visible:
        return tuple(3 * c + rng.randint(0, 2) for c in _page(rng, user, sim, size))
    return tuple(rng.sample(range(1, 3 * sim.n_customers + 1), size))


def _action(sim: Simulation, user: SimUser, name: str, ts: float, where: Place, ua: str) -> Event:
    rng = sim.rng
    ip, country = where[0], where[1]
    base: _TimedSender = {"ts": ts, "user": user, "ip": ip, "country": country, "ua": ua}
    if name.startswith("list_"):
        resource = name[5:]
        n = rng.randint(5, 50)
        ids = _page(rng, user, sim, n) if resource == "customers" else _related(rng, user, sim, n)
        return Event(
            method="GET",
            path=f"/api/{resource}",
            operation=f"{resource}.list",
            returned=n,
            ids=ids,
            query={"page": str(rng.randint(1, 4))},
            **base,
        )
    if name.startswith("view_"):
        resource = name[5:] + "s"
        rid = _page(rng, user, sim, 1)[0] if resource == "customers" else _related(rng, user, sim, 1)[0]
        return Event(
            method="GET",
            path=f"/api/{resource}/{rid}",
            operation=f"{resource}.view",
            returned=1,
            ids=(rid,),
            resource_id=str(rid),
            **base,
        )
    if name == "update_customer":
        rid = _page(rng, user, sim, 1)[0]
        return Event(
            method="PUT",
            path=f"/api/customers/{rid}",
            operation="customers.update",
            returned=1,
            ids=(rid,),
            targets=1,
            resource_id=str(rid),
            **base,
        )
    if name == "create_customer":
        rid = sim.n_customers + rng.randint(1, 10**6)
        return Event(
            method="POST",
            path="/api/customers",
            operation="customers.create",
            status=201,
            returned=1,
            ids=(rid,),
            **base,
        )
    return Event(method="GET", path="/api/admin/users", operation="admin.admin", **base)


def _batch_walk(sim: Simulation, user: SimUser, ts: float, where: Place, ua: str) -> list[Event]:
    """Walking through a freshly imported batch: a few consecutive ids, benign."""
    visible = set(user.visible)
    starts = [v for v in user.visible if v + 1 in visible and v - 1 not in visible]
    if not starts:
        return []
    rid = sim.rng.choice(starts)
    out: list[Event] = []
    while rid in visible and len(out) < 12:
        out.append(customer_view(ts + 20 * len(out), user, where, ua, rid))
        rid += 1
    return out


def customer_view(ts: float, user: SimUser, where: Place, ua: str, rid: int) -> Event:
    """One GET of customer ``rid`` (walks and the compromised account's reads alike)."""
    return Event(
        ts=ts,
        user=user,
        ip=where[0],
        country=where[1],
        ua=ua,
        method="GET",
        path=f"/api/customers/{rid}",
        operation="customers.view",
        returned=1,
        ids=(rid,),
        resource_id=str(rid),
    )


def export_event(sim: Simulation, user: SimUser, ts: float, where: Place, ua: str, n: int) -> Event:
    ids = _page(sim.rng, user, sim, min(n, 200))
    return Event(
        ts=ts,
        user=user,
        ip=where[0],
        country=where[1],
        ua=ua,
        method="GET",
        path="/api/customers/export.csv",
        operation="customers.export",
        returned=n,
        ids=ids,
    )


def delete_events(sim: Simulation, user: SimUser, ts: float, where: Place, ua: str, n: int, bulk: bool) -> list[Event]:
    rng = sim.rng
    base: _Sender = {"user": user, "ip": where[0], "country": where[1], "ua": ua}
    if bulk:
        return [
            Event(
                ts=ts, method="POST", path="/api/customers/bulk-delete", operation="customers.delete", targets=n, **base
            )
        ]
    out = []
    for i in range(n):
        rid = _page(rng, user, sim, 1)[0]
        out.append(
            Event(
                ts=ts + i * rng.uniform(5, 40),
                method="DELETE",
                path=f"/api/customers/{rid}",
                operation="customers.delete",
                status=204,
                targets=1,
                resource_id=str(rid),
                **base,
            )
        )
    return out


def _reporting(sim: Simulation, user: SimUser, day: int) -> list[Event]:
    rng, when = sim.rng, sim.date(day)
    where = (user.office_ip, "FR")
    t0 = local_epoch(when, rng.uniform(1.0, 2.5), "UTC")
    out = [
        export_event(sim, user, t0 + i * rng.uniform(60, 400), where, user.ua, rng.randint(2000, 4000))
        for i in range(rng.randint(2, 4))
    ]
    out += [_action(sim, user, "list_customers", t0 + 1800 + i * 7, where, user.ua) for i in range(rng.randint(10, 25))]
    return out


def day_traffic(sim: Simulation, user: SimUser, day: int) -> list[Event]:
    if day < user.first_day or day in user.leave:
        return []
    if user.role == "reporting_service":
        return _reporting(sim, user, day)
    user = persona(sim, user, day)
    rng, when = sim.rng, sim.date(day)
    weekend = when.weekday() >= 5 or is_holiday(when, user.site.country)
    if weekend and rng.random() > 0.07:
        return []
    ip, country, tz, _abroad = _where(sim, user, day)
    where = (ip, country)
    ua = user.user_agent(day)
    if user.mobile and rng.random() < 0.15:
        ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) CRMMobile/4.2"
    lo, hi = DAILY[user.role]
    n = rng.randint(lo, hi) if not weekend else rng.randint(2, 8)
    if is_month_end(when) and not weekend:
        n = round(n * rng.uniform(1.1, 1.5))  # closing: everybody is busier
    if user.first_day and day - user.first_day < 5:
        n = max(3, n // 2)  # a late joiner's first days are quiet
    start = user.start_hour + rng.uniform(-0.7, 0.7)
    length = user.hours if not weekend else rng.uniform(0.5, 2.0)
    hours = sorted(start + rng.random() * length for _ in range(n))
    if not weekend and rng.random() < 0.1:  # an evening session at home
        hours += sorted(rng.uniform(20.0, 22.5) for _ in range(rng.randint(2, 8)))
    names = [a for a, _ in MIX[user.role]]
    weights = [w for _, w in MIX[user.role]]
    out = [_action(sim, user, rng.choices(names, weights)[0], local_epoch(when, h, tz), where, ua) for h in hours]
    if user.visible and not weekend and rng.random() < 0.08:
        out += _batch_walk(sim, user, local_epoch(when, start + rng.random() * length, tz), where, ua)
    for ev in out:
        if rng.random() < 0.02:  # a stale link, an out-of-scope record
            ev.status, ev.returned, ev.ids = rng.choice((403, 404)), 0, ()
    t_mid = local_epoch(when, start + length / 2, tz)
    exp = 0
    if is_month_end(when) and not weekend:
        peak = 2 if when.month % 3 == 0 else 1  # quarter-end: bigger pipelines, more people export
        if user.role in ("sales_manager", "admin") and rng.random() < 0.7:
            exp = rng.randint(300, 1200) * peak
        elif user.role == "sales_rep" and rng.random() < 0.25 * peak:
            exp = rng.randint(50, 300) * peak
    elif not weekend and user.role in ("sales_manager", "admin") and rng.random() < 0.04:
        exp = rng.randint(100, 400)
    elif not weekend and user.role == "sales_rep" and rng.random() < 0.01:
        exp = rng.randint(20, 100)
    if exp:
        parts = rng.randint(1, 3)
        out += [export_event(sim, user, t_mid + i * 300, where, ua, exp // parts) for i in range(parts)]
    if not weekend:
        if user.role == "support_agent" and rng.random() < 0.2:
            out += delete_events(sim, user, t_mid + 900, where, ua, rng.randint(1, 3), False)
        elif user.role == "sales_rep" and rng.random() < 0.03:
            out += delete_events(sim, user, t_mid + 900, where, ua, 1, False)
        elif user.role == "admin" and rng.random() < 0.03:
            out += delete_events(sim, user, t_mid + 900, where, ua, rng.randint(5, 30), True)
    return out
