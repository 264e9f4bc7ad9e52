"""``crmgw simulate``: realistic CRM traffic for N users over D days, as the gateway's audit lines.

Everything the detector learns from must look like what the gateway writes, so the simulator emits
audit records with the same keys as gateway/audit/events.py (time, user, roles, timezone,
client_ip, country, method, path, operation, effect, reason, status, records_returned, record_ids,
targets, user_agent, resource_id, ...). The population has the habits that make anomaly detection
hard in real life: three sites in different time zones with their own working hours, remote days,
phones on mobile networks, browser upgrades, travellers (near and far), month-end exports by
managers, a nightly reporting service, benign deletes and clean-ups, late joiners with little
history. Injected attacks (detectors.scenarios) are labelled in labels.jsonl.

One ``random.Random(seed)`` drives everything, users are generated before traffic and traffic in a
fixed order, so the same seed always writes byte-identical files.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

DEFAULT_START = date(2026, 1, 5)  # a Monday; the range covers month ends


@dataclasses.dataclass(frozen=True)
class Site:
    name: str
    tz: str
    country: str
    office_net: str  # first three octets
    home_prefix: int  # first octet of the country's residential addresses
    near: tuple[tuple[str, str, int], ...]  # trips: (country, time zone, first octet)
    far: tuple[tuple[str, str, int], ...]


SITES = (
    Site(
        "paris",
        "Europe/Paris",
        "FR",
        "198.51.100",
        90,
        (
            ("DE", "Europe/Berlin", 84),
            ("GB", "Europe/London", 81),
            ("ES", "Europe/Madrid", 83),
            ("IT", "Europe/Rome", 79),
        ),
        (("US", "America/New_York", 73), ("CN", "Asia/Shanghai", 116), ("JP", "Asia/Tokyo", 126)),
    ),
    Site(
        "shanghai",
        "Asia/Shanghai",
        "CN",
        "203.0.113",
        116,
        (
            ("HK", "Asia/Hong_Kong", 112),
            ("SG", "Asia/Singapore", 118),
            ("KR", "Asia/Seoul", 121),
            ("JP", "Asia/Tokyo", 126),
        ),
        (("FR", "Europe/Paris", 90), ("DE", "Europe/Berlin", 84), ("US", "America/Los_Angeles", 73)),
    ),
    Site(
        "newyork",
        "America/New_York",
        "US",
        "192.0.2",
        73,
        (("CA", "America/Toronto", 99), ("MX", "America/Mexico_City", 187)),
        (("GB", "Europe/London", 81), ("FR", "Europe/Paris", 90), ("JP", "Asia/Tokyo", 126)),
    ),
)
SITE_WEIGHTS = (0.5, 0.3, 0.2)
ROLE_MIX = (("sales_rep", 0.55), ("sales_manager", 0.13), ("support_agent", 0.22), ("admin", 0.06))
ROLES_OF = {
    "sales_rep": ["sales_rep"],
    "sales_manager": ["sales_manager", "sales_rep"],
    "admin": ["admin", "sales_manager", "sales_rep"],
    "support_agent": ["support_agent"],
    "reporting_service": ["reporting_service"],
}
BROWSERS = ("Firefox", "Chrome", "Edg", "Safari")
OSES = ("Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 14_4", "X11; Linux x86_64")


@dataclasses.dataclass
class SimUser:
    id: str
    role: str
    roles: list[str]
    team: str
    site: Site
    office_ip: str
    home_ip: str
    ua: str
    ua_upgrade_day: int | None
    start_hour: float  # local time the working day starts
    hours: float
    first_day: int  # late joiners start after day 0
    visible: list[int]  # customer ids the user's lists and views return
    mobile: bool
    remote_share: float
    trips: list[tuple[int, int, str, str, str]]  # (first day, days, country, tz, ip)
    leave: set[int]

    def user_agent(self, day: int) -> str:
        if self.ua_upgrade_day is not None and day >= self.ua_upgrade_day:
            return self.ua.replace(".0 ", ".1 ", 1) + " upgraded"
        return self.ua


@dataclasses.dataclass
class Event:
    ts: float  # epoch seconds, UTC
    user: SimUser
    method: str
    path: str
    operation: str
    ip: str
    country: str
    ua: str
    status: int = 200
    returned: int = 0
    ids: tuple[int, ...] = ()
    targets: int | None = None
    resource_id: str | None = None
    query: dict[str, str] | None = None


def _ua(rng: random.Random) -> str:
    browser, os_ = rng.choice(BROWSERS), rng.choice(OSES)
    return f"Mozilla/5.0 ({os_}) {browser}/{rng.randint(110, 128)}.0 CRMWeb"


def _ip(rng: random.Random, first: int) -> str:
    return f"{first}.{rng.randint(1, 254)}.{rng.randint(0, 254)}.{rng.randint(1, 254)}"


def _visible_ids(rng: random.Random, role: str, n_customers: int) -> list[int]:
    if role in ("support_agent", "admin", "reporting_service"):
        return []  # sees everything: drawn from the whole range
    size = rng.randint(60, 200) if role == "sales_rep" else rng.randint(300, 800)
    ids = set(rng.sample(range(1, n_customers + 1), size))
    for _ in range(rng.randint(1, 2)):  # imported batches get consecutive ids
        start = rng.randint(1, n_customers - 20)
        ids.update(range(start, start + rng.randint(5, 15)))
    return sorted(ids)


def make_users(rng: random.Random, n: int, days: int, n_customers: int) -> list[SimUser]:
    users = []
    n_services = max(1, n // 100)
    for i in range(n):
        if i < n_services:
            role, site = "reporting_service", SITES[0]
        else:
            role = rng.choices([r for r, _ in ROLE_MIX], [w for _, w in ROLE_MIX])[0]
            site = rng.choices(SITES, SITE_WEIGHTS)[0]
        uid = f"svc-reporting-{i + 1}" if role == "reporting_service" else f"u{i:04d}"
        late = role != "reporting_service" and rng.random() < 0.06 and days > 14
        trips = []
        if role != "reporting_service" and rng.random() < 0.18 and days > 10:
            for _ in range(rng.choice((1, 1, 2))):
                country, tz, octet = rng.choice(site.far if rng.random() < 0.35 else site.near)
                trips.append((rng.randint(3, days - 2), rng.randint(2, 5), country, tz, _ip(rng, octet)))
        users.append(
            SimUser(
                id=uid,
                role=role,
                roles=ROLES_OF[role],
                team=f"{site.name}-{rng.randint(1, 4)}",
                site=site,
                office_ip=f"{site.office_net}.{rng.randint(1, 254)}"
                if role != "reporting_service"
                else "198.51.100.250",
                home_ip=_ip(rng, site.home_prefix),
                ua=_ua(rng) if role != "reporting_service" else "crm-reporting/2.3 python-requests/2.31",
                ua_upgrade_day=rng.randint(1, days) if role != "reporting_service" and rng.random() < 0.4 else None,
                start_hour=rng.uniform(7.5, 10.0),
                hours=rng.uniform(7.0, 9.5),
                first_day=rng.randint(days // 3, days - 5) if late else 0,
                visible=_visible_ids(rng, role, n_customers),
                mobile=rng.random() < 0.2,
                remote_share=rng.uniform(0.0, 0.4),
                trips=trips,
                leave={d for d in range(days) if rng.random() < 0.04},
            )
        )
    return users


def local_epoch(day: date, hour: float, tz: str) -> float:
    midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return midnight.timestamp() + hour * 3600.0


def to_record(ev: Event, rng: random.Random) -> dict[str, Any]:
    """The event as the gateway's audit line (gateway/audit/events.py keys)."""
    from detectors.simspill import record_of, row_of

    return record_of(row_of(ev), rng)


class Simulation:
    def __init__(
        self,
        n_users: int,
        days: int,
        seed: int,
        start: date = DEFAULT_START,
        incidents: int | None = None,
        difficulty: dict[str, str] | None = None,
    ):
        if n_users < 2 or days < 2:
            raise ValueError("need at least 2 users and 2 days")
        self.rng = random.Random(seed)
        self.days, self.start = days, start
        self.n_customers = max(5000, 30 * n_users)
        self.users = make_users(self.rng, n_users, days, self.n_customers)
        # enough incidents that a 20 % held-out slice still has several of each scenario
        self.incidents = incidents if incidents is not None else max(2, round(n_users * days / 450))
        # scenario -> "easy" | "medium" | "hard" (default: each incident draws one)
        self.difficulty: dict[str, str] = dict(difficulty or {})
        from detectors.simsurprises import plan

        self.changes: dict[str, list[tuple[int, SimUser]]] = plan(self)  # role changes, a reorganised team

    def date(self, day: int) -> date:
        return self.start + timedelta(days=day)

    def run(self) -> tuple[list[Event], list[dict[str, str]]]:
        from detectors.scenarios import inject_all
        from detectors.simtraffic import day_traffic

        events: list[Event] = []
        for user in self.users:
            for day in range(self.days):
                events.extend(day_traffic(self, user, day))
        attacks, labels = inject_all(self)
        events.extend(attacks)
        events.sort(key=lambda e: (e.ts, e.user.id))
        return events, labels

    def write(self, out: Path) -> dict[str, Any]:
        """Writes audit-YYYY-MM-DD.log (UTC days) and labels.jsonl; returns a summary. The lines are
        those of :meth:`run` in time order, but events are spilled to disk per day as they are drawn
        (detectors.simspill): memory holds one day's, not the run's."""
        from detectors.scenarios import inject_all
        from detectors.simspill import DaySpill, record_of
        from detectors.simtraffic import day_traffic

        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("audit-*.log"):
            old.unlink()
        with tempfile.TemporaryDirectory(dir=out, prefix=".spill-") as tmp:
            spill = DaySpill(Path(tmp))
            try:
                for user in self.users:
                    for day in range(self.days):
                        for ev in day_traffic(self, user, day):
                            spill.add(ev)
                attacks, labels = inject_all(self)
                for ev in attacks:
                    spill.add(ev)
                days = spill.days()
                for utc_day in days:
                    with open(out / f"audit-{utc_day}.log", "wb") as fh:
                        for row in spill.day(utc_day):
                            fh.write(orjson.dumps(record_of(row, self.rng)) + b"\n")
            finally:
                spill.close()
        (out / "labels.jsonl").write_bytes(b"".join(orjson.dumps(lbl) + b"\n" for lbl in labels))
        return {
            "users": len(self.users),
            "days": self.days,
            "events": spill.events,
            "files": len(days),
            "labels": len(labels),
            "incidents": len({lbl["incident"] for lbl in labels}),
        }


def simulate(
    n_users: int,
    days: int,
    seed: int,
    out: Path,
    *,
    start: date = DEFAULT_START,
    incidents: int | None = None,
    difficulty: dict[str, str] | None = None,
) -> dict[str, Any]:
    return Simulation(n_users, days, seed, start, incidents, difficulty).write(Path(out))
