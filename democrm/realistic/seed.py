"""Deterministic records of the realistic profile: accounts, then leads with nested contacts.

One ``random.Random(seed)`` draws everything in a fixed order, ids included (UUIDs built from the
generator, never ``uuid4()``), and timestamps count from the classic seed's fixed date, so the same
seed always yields the same bytes. The data is shaped to exercise what real CRMs do and the classic
profile does not: leads created by one person (often a manager) and assigned to another, one or two
assignees, nested contacts assigned to someone else now and then, leads whose account belongs to
another rep, a few leads with no account.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from datetime import timedelta
from typing import Any

from democrm.realistic.people import (
    PROFILES,
    derived_teams,
    profile_brief,
    profile_ref,
    team_of,
    user_of_profile,
)
from democrm.seed import COMPANY_KINDS, COMPANY_STEMS, DEAL_PRODUCTS, DIRECTORY, EPOCH, FIRST_NAMES, LAST_NAMES, OWNERS

LEAD_STATUSES: tuple[str, ...] = ("assigned", "in process", "converted", "recycled", "closed")
INDUSTRIES: tuple[str, ...] = ("Banking", "Logistics", "Software", "Retail", "Pharma", "Manufacturing", "Food")
TEAM_MANAGER: dict[str, str] = {"east": "dave", "west": "erin"}


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def timestamp(rng: random.Random) -> str:
    return (EPOCH + timedelta(seconds=rng.randint(0, 600 * 86400))).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ascii(text: str) -> str:
    """``"Chloé O'Brien"`` -> ``"chloeobrien"``: accents folded, for e-mail addresses."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return folded.lower().replace("'", "").replace(" ", "")


def phones(rng: random.Random, user: str) -> tuple[str, str]:
    """The same kind of number spelt two ways, as real CRMs hold them: spaced landline, bare mobile."""
    if DIRECTORY[user]["branch"] == "shanghai":
        return (
            f"+86 21 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            f"+861{rng.randint(3, 8)}{rng.randint(10**8, 10**9 - 1)}",
        )
    landline = "+33 1 " + " ".join(f"{rng.randint(0, 99):02d}" for _ in range(4))
    return landline, f"+33{rng.choice('67')}{rng.randint(10**7, 10**8 - 1)}"


def _assignees(rng: random.Random, primary: str) -> list[str]:
    if rng.random() < 0.3:
        return [primary, rng.choice([owner for owner in OWNERS if owner != primary])]
    return [primary]


def _creator(rng: random.Random, primary: str) -> str:
    """Mostly the rep's manager or the admin: created_by is usually not the assignee."""
    manager = TEAM_MANAGER.get(team_of(primary), "grace")
    return rng.choices([manager, "grace", primary], weights=(5, 2, 3))[0]


def _account(rng: random.Random) -> dict[str, Any]:
    stem, (kind, legal) = rng.choice(COMPANY_STEMS), rng.choice(COMPANY_KINDS)
    users = _assignees(rng, rng.choice(OWNERS))
    return {
        "id": new_uuid(rng),
        "name": f"{stem} {kind} {legal}",
        "created_by": profile_brief(_creator(rng, users[0])),
        "assigned_to": [profile_ref(user) for user in users],
        "teams": derived_teams(users),
        "phone": phones(rng, users[0])[0],
        "industry": rng.choice(INDUSTRIES),
        "annual_revenue": round(rng.uniform(50_000, 90_000_000), 2),
    }


def _contact(rng: random.Random, primary: str, domain: str) -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    holder = primary if rng.random() < 0.85 else rng.choice([owner for owner in OWNERS if owner != primary])
    return {
        "id": new_uuid(rng),
        "first_name": first,
        "last_name": last,
        "email": f"{_ascii(first)}.{_ascii(last)}@{domain}",
        "phone": phones(rng, holder)[1],
        "assigned_to": [profile_ref(holder)],
    }


def _lead(rng: random.Random, accounts: list[dict[str, Any]]) -> dict[str, Any]:
    account = rng.choice(accounts) if accounts and rng.random() < 0.9 else None
    account_owner = user_of_profile(account["assigned_to"][0]["id"]) if account else None
    primary = account_owner if account_owner and rng.random() < 0.7 else rng.choice(OWNERS)
    users = _assignees(rng, primary)
    company = account["name"] if account else "Walk-in"
    domain = f"{_ascii(company.split()[0])}.example"
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    landline, mobile = phones(rng, primary)
    amount = round(rng.uniform(1_000, 500_000), 2)
    return {
        "id": new_uuid(rng),
        "title": f"{rng.choice(DEAL_PRODUCTS)} for {company}",
        "amount": amount,
        "status": rng.choice(LEAD_STATUSES),
        "created_by": PROFILES[_creator(rng, primary)],
        "assigned_to": [profile_ref(user) for user in users],
        "teams": derived_teams(users),
        "account": account["id"] if account else None,
        "Phone": landline,
        "mobilePhone": mobile,
        "email": f"{_ascii(first)}.{_ascii(last)}@{domain}",
        "quote_price": round(amount * rng.uniform(0.9, 1.2), 2),
        "contacts": [_contact(rng, primary, domain) for _ in range(rng.randint(0, 3))],
        "created_at": timestamp(rng),
    }


def generate(seed: int, *, accounts: int = 30, leads: int = 60) -> dict[str, list[dict[str, Any]]]:
    """All records of the profile, with their ids, in the order the store keeps them."""
    rng = random.Random(seed)
    account_rows = [_account(rng) for _ in range(accounts)]
    return {"accounts": account_rows, "leads": [_lead(rng, account_rows) for _ in range(leads)]}
