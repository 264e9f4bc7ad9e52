"""Deterministic demo data for democrm: the same seed always yields the same records.

Everything is drawn from one ``random.Random(seed)`` in a fixed order (customers, then contacts,
then deals) and timestamps count from a fixed date, never from "now", so tests and benchmarks can
compare runs byte for byte. A record's team/department/region/branch are its owner's, as in the
gateway's users directory (docs/CONTRACTS.md), so data-scope rules have something real to filter.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

# The people of rules/users.yaml as the CRM knows them. democrm is deliberately independent of the
# gateway package (it plays the legacy system), so it keeps its own copy of the org attributes.
DIRECTORY: dict[str, dict[str, str]] = {
    "alice": {
        "role": "sales_rep",
        "team": "east",
        "department": "sales",
        "region": "emea",
        "branch": "paris",
        "status": "active",
    },
    "bob": {
        "role": "sales_rep",
        "team": "east",
        "department": "sales",
        "region": "apac",
        "branch": "shanghai",
        "status": "active",
    },
    "carol": {
        "role": "sales_rep",
        "team": "west",
        "department": "sales",
        "region": "emea",
        "branch": "paris",
        "status": "active",
    },
    "dave": {
        "role": "sales_manager",
        "team": "east",
        "department": "sales",
        "region": "emea",
        "branch": "paris",
        "status": "active",
    },
    "erin": {
        "role": "sales_manager",
        "team": "west",
        "department": "sales",
        "region": "apac",
        "branch": "shanghai",
        "status": "active",
    },
    "frank": {
        "role": "support_agent",
        "team": "support",
        "department": "support",
        "region": "emea",
        "branch": "paris",
        "status": "active",
    },
    "grace": {
        "role": "admin",
        "team": "it",
        "department": "it",
        "region": "emea",
        "branch": "paris",
        "status": "active",
    },
    "heidi": {
        "role": "security_analyst",
        "team": "security",
        "department": "security",
        "region": "emea",
        "branch": "paris",
        "status": "active",
    },
    "ivan": {
        "role": "sales_rep",
        "team": "west",
        "department": "sales",
        "region": "apac",
        "branch": "shanghai",
        "status": "offboarded",
    },
    "svc-reporting": {
        "role": "reporting_service",
        "team": "it",
        "department": "it",
        "region": "emea",
        "branch": "paris",
        "status": "active",
    },
}
OWNERS: tuple[str, ...] = ("alice", "bob", "carol", "dave", "erin", "ivan")
ORG_FIELDS: tuple[str, ...] = ("team", "department", "region", "branch")
CUSTOMER_STATUSES: tuple[str, ...] = ("lead", "active", "churned")
DEAL_STAGES: tuple[str, ...] = ("lead", "qualified", "proposal", "negotiation", "closed_won", "closed_lost")
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

FIRST_NAMES = (
    "Camille",
    "Louis",
    "Chloé",
    "Hugo",
    "Léa",
    "Jules",
    "Manon",
    "Arthur",
    "Inès",
    "Théo",
    "Wei",
    "Li",
    "Mei",
    "Jun",
    "Xiu",
    "Hao",
    "Yan",
    "Lei",
    "Emma",
    "Oliver",
    "Sophia",
    "Noah",
    "Amelia",
    "Lucas",
    "Isabel",
    "Mateo",
    "Sofia",
    "Lars",
    "Anja",
    "Priya",
    "Ravi",
    "Yuki",
)
LAST_NAMES = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Smith",
    "Jones",
    "Brown",
    "García",
    "Müller",
    "Schmidt",
    "Rossi",
    "Kowalski",
    "Nakamura",
    "Patel",
    "O'Brien",
)
COMPANY_STEMS = (
    "Dupont",
    "Lumière",
    "Atlas",
    "Horizon",
    "Jade",
    "Orient",
    "Pacific",
    "Boréal",
    "Nova",
    "Summit",
    "Lotus",
    "Vertex",
    "Cobalt",
    "Meridian",
    "Helios",
    "Sirius",
    "Pivot",
    "Quartz",
)
COMPANY_KINDS = (
    ("Logistique", "SARL"),
    ("Conseil", "SAS"),
    ("Trading", "Co., Ltd."),
    ("Software", "Ltd"),
    ("Industries", "SA"),
    ("Foods", "Inc."),
    ("Pharma", "GmbH"),
    ("Textiles", "Co., Ltd."),
)
COMPLAINTS = (
    "Invoice sent twice, refund requested",
    'Delivery late; customer called it "unacceptable"',
    "Support line unreachable for two days",
    "Wrong VAT number on the March invoice",
    "Asked to be removed from the newsletter",
    "Product arrived damaged (pallet 3 of 5)",
    "Price increase not announced in advance",
)
NOTES = (
    "Prefers email over phone.",
    "Renewal due next quarter; decision maker is the CFO.",
    "Met at the trade fair, interested in the premium plan.",
    "Budget frozen until the new fiscal year.",
    "Key account: escalate any issue to the manager.",
    "Asked for a discount, see thread from 12 May.\nFollow up after the board meeting.",
    "",
)
DEAL_PRODUCTS = (
    "Annual licence",
    "Support contract",
    "Onboarding package",
    "Hardware refresh",
    "Data migration",
    "Premium upgrade",
)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _phone(rng: random.Random, branch: str) -> str:
    """A phone number in the owner's country format, e.g. ``+33 1 42 68 53 07``."""
    if branch == "shanghai":
        return f"+86 21 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
    return "+33 1 " + " ".join(f"{rng.randint(0, 99):02d}" for _ in range(4))


def _email_local(first: str, last: str) -> str:
    ascii_only = f"{first}.{last}".lower().encode("ascii", "ignore").decode()
    return ascii_only.replace("'", "").replace(" ", "")


def org_of(user_id: str) -> dict[str, str]:
    """team/department/region/branch of a directory user; empty strings for an unknown user."""
    person = DIRECTORY.get(user_id, {})
    return {field: person.get(field, "") for field in ORG_FIELDS}


def person_ref(user_id: str) -> dict[str, str]:
    """The ``{"id", "email"}`` shape contacts and deals use to name people."""
    return {"id": user_id, "email": f"{user_id}@example.com"}


def _customer(rng: random.Random) -> dict[str, Any]:
    owner = rng.choice(OWNERS)
    org = org_of(owner)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    stem, (kind, legal) = rng.choice(COMPANY_STEMS), rng.choice(COMPANY_KINDS)
    created = EPOCH + timedelta(seconds=rng.randint(0, 600 * 86400))
    updated = created + timedelta(seconds=rng.randint(0, 90 * 86400))
    return {
        "name": f"{first} {last}",
        "email": f"{_email_local(first, last)}@{_email_local(stem, kind).replace('.', '-')}.example",
        "phone": _phone(rng, org["branch"]),
        "company": f"{stem} {kind} {legal}",
        "owner_id": owner,
        **org,
        "status": rng.choices(CUSTOMER_STATUSES, weights=(3, 6, 1))[0],
        "quote_price": round(rng.uniform(500, 250_000), 2),
        "complaints": rng.choice(COMPLAINTS) if rng.random() < 0.4 else "",
        "notes": rng.choice(NOTES),
        "created_at": _timestamp(created),
        "updated_at": _timestamp(updated),
    }


def _contact(rng: random.Random, customers: list[dict[str, Any]]) -> dict[str, Any]:
    index = rng.randrange(len(customers)) if customers else None
    customer = customers[index] if index is not None else None
    # A contact belongs to whoever owns its customer, so scope rules agree across resources.
    owner = customer["owner_id"] if customer else rng.choice(OWNERS)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    domain = customer["email"].split("@", 1)[1] if customer else "example.net"
    return {
        "customer_id": index + 1 if index is not None else None,
        "first_name": first,
        "last_name": last,
        "email": f"{_email_local(first, last)}@{domain}",
        "phone": _phone(rng, org_of(owner)["branch"]),
        "owner": person_ref(owner),
        **org_of(owner),
    }


def _deal(rng: random.Random, customers: list[dict[str, Any]]) -> dict[str, Any]:
    index = rng.randrange(len(customers)) if customers else None
    customer = customers[index] if index is not None else None
    lead = customer["owner_id"] if customer else rng.choice(OWNERS)
    assigned = [lead]
    if rng.random() < 0.35:
        assigned.append(rng.choice([owner for owner in OWNERS if owner != lead]))
    company = customer["company"] if customer else "Walk-in"
    return {
        "customer_id": index + 1 if index is not None else None,
        "title": f"{rng.choice(DEAL_PRODUCTS)} for {company}",
        "amount": round(rng.uniform(1_000, 500_000), 2),
        "stage": rng.choice(DEAL_STAGES),
        "assigned_to": [person_ref(user) for user in assigned],
        **org_of(lead),
    }


def generate(seed: int, *, customers: int, contacts: int, deals: int) -> dict[str, list[dict[str, Any]]]:
    """All demo records, without ids (the store numbers them from 1 in this order)."""
    rng = random.Random(seed)
    customer_rows = [_customer(rng) for _ in range(customers)]
    return {
        "customers": customer_rows,
        "contacts": [_contact(rng, customer_rows) for _ in range(contacts)],
        "deals": [_deal(rng, customer_rows) for _ in range(deals)],
    }
