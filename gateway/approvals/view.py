"""The in-memory view of the versioned records (approvals, access requests) one process knows, built
from the journal: what the shared store (gateway/approvals/shared_store.py) serves without Redis,
checks a change against when Redis is not configured, and replays into Redis.

It keeps the last few copies of each record (not only the newest) because a journalled copy can
later be voided (it lost a race in Redis), and the one before it must then be the newest again.
``by_fp`` maps a request fingerprint to the id of the newest record asked for it.
"""

from __future__ import annotations

import logging
from typing import Generic, TypeVar

from pydantic import ValidationError

from gateway.alerts.journal import Journal
from gateway.approvals.model import Versioned

log = logging.getLogger("crmgw.approvals")
R = TypeVar("R", bound=Versioned)


class LocalView(Generic[R]):
    """The newest copy of every record this process knows, built from the journal."""

    def __init__(self, journal: Journal, model: type[R], key: str):
        self.journal = journal
        self.model, self.key = model, key
        self.copies: dict[str, list[tuple[str | None, R]]] = {}
        self.by_fp: dict[str, str] = {}

    def refresh(self) -> None:
        for record in self.journal.read_new():
            if record["op"] == "void":
                copies = self.copies.get(str(record.get("id")), [])
                copies[:] = [c for c in copies if c[0] != record.get("event")]
                continue
            try:
                approval = self.model.model_validate(record.get(self.key))
            except ValidationError:
                self.journal.corrupt_lines += 1
                log.warning("%s journal %s: skipped an invalid record", self.key, self.journal.path)
                continue
            self.remember(approval, record.get("event"))

    def remember(self, approval: R, event: str | None) -> None:
        copies = self.copies.setdefault(approval.id, [])
        if event is not None and any(e == event for e, _ in copies):
            return
        copies.append((event, approval))
        copies.sort(key=lambda c: c[1].rev)
        del copies[:-4]
        if approval.rev == 1 or approval.fingerprint not in self.by_fp:  # journal order: the newest asked
            self.by_fp[approval.fingerprint] = approval.id

    def latest(self, approval_id: str) -> R | None:
        copies = self.copies.get(approval_id)
        return copies[-1][1] if copies else None

    def all(self) -> list[R]:
        return [c[-1][1] for c in self.copies.values() if c]
