"""The large CSV export the benchmark's upstream serves: customers shaped like the demo CRM's.

Rows are written in batches from a fixed pattern (deterministic, ~20 s per GB): owners cycle over
four sales reps, so a rep scoped ``own`` receives a quarter of the rows; every tenth name is quoted
with a comma in it and every fiftieth note holds a quoted line break, so the filter's slow path (the
csv module) runs on a share of the blocks as it would on a real export.
"""

from __future__ import annotations

from pathlib import Path

HEADER = "id,name,email,phone,company,owner_id,team,department,region,branch,status,quote_price,complaints,notes\r\n"
OWNERS = (("alice", "east", "emea"), ("bob", "east", "apac"), ("carol", "west", "emea"), ("dave", "west", "amer"))
BATCH = 10_000


def row(i: int) -> str:
    owner, team, region = OWNERS[i % 4]
    name = f'"Customer {i}, Ltd"' if i % 10 == 0 else f"Customer {i}"
    notes = '"called twice\r\nwants a quote"' if i % 50 == 0 else "renewal due in spring; prefers email"
    return (
        f"{i},{name},c{i}@client.example,+33 1 {i % 100:02d} {i % 97:02d} 67 89,Company {i % 1000},"
        f"{owner},{team},sales,{region},paris,active,{(i * 37) % 100000}.00,late delivery,{notes}\r\n"
    )


def write_csv(path: Path, size_bytes: int) -> int:
    """Write at least ``size_bytes`` of CSV to ``path``; returns the number of data rows."""
    written, i = 0, 1
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        written += len(HEADER)
        while written < size_bytes:
            batch = "".join(row(n) for n in range(i, i + BATCH))
            f.write(batch)
            written += len(batch)
            i += BATCH
    return i - 1


def expected_rows(rows: int, owner: str = "alice") -> int:
    """How many of the first ``rows`` rows belong to ``owner``."""
    index = next(n for n, (o, _, _) in enumerate(OWNERS) if o == owner)
    return sum(1 for i in range(1, rows + 1) if i % 4 == index)
