"""The static upstream's answers: a 50-record customer list (~10 KB) and one record (~500 B).

Shaped like the demo CRM's ``GET /api/customers`` (``{"data": [...], "page", "page_size", "total"}``)
so the gateway's catalogue, scope and masks apply to them exactly as to the real CRM. Deterministic:
every run serves the same bytes.
"""

from __future__ import annotations

import json

OWNERS = [  # (owner, team, department, region, branch), as in rules/users.yaml
    ("alice", "east", "sales", "emea", "paris"),
    ("bob", "east", "sales", "apac", "shanghai"),
    ("carol", "west", "sales", "emea", "paris"),
    ("dave", "east", "sales", "emea", "paris"),
    ("erin", "west", "sales", "apac", "shanghai"),
    ("ivan", "west", "sales", "apac", "shanghai"),
]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent"]


def customer(i: int, notes: str = "") -> dict:
    owner, team, department, region, branch = OWNERS[i % len(OWNERS)]
    company = COMPANIES[i % len(COMPANIES)]
    return {
        "id": i,
        "name": f"Cust {i}",
        "email": f"c{i}@{company.lower()}.io",
        "phone": f"+33 1 {i:02d} 00 00",
        "company": company,
        "owner_id": owner,
        "team": team,
        "department": department,
        "region": region,
        "branch": branch,
        "status": "ok",
        "quote_price": 1000 + i,
        "complaints": "",
        "notes": notes,
    }


def customer_list(n: int = 50) -> bytes:
    body = {"data": [customer(i) for i in range(1, n + 1)], "page": 1, "page_size": n, "total": n}
    return json.dumps(body, separators=(",", ":")).encode()


def single_customer() -> bytes:
    notes = "Prefers e-mail. Renewal due in Q3; the last call is summarised in the ticket system."
    record = customer(1, notes=notes) | {
        "complaints": "Late delivery in March, resolved with a credit note.",
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-02-03T04:05:06Z",
    }
    return json.dumps(record, separators=(",", ":")).encode()
