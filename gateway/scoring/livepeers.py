"""A replica's peer knowledge for the new-country features, the same on every replica.

The offline replay knows every user's countries (detectors.peers: a country new to a user is a
signal only if fewer than two other users worked from it on an earlier day). A live user's view
replays one user only, so the replica gives every view one :class:`detectors.peers.Peers`: the
model's (its training history), plus the peers every replica learns live, shared in the live state
(Redis: one hash per country). Countries the model already knows as common are never rare again,
so only records from the others are shared and looked up: usually none.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from detectors.peers import Peers
from gateway.scoring.livestate import Fetched, LiveState, member_json

MAX_WRITTEN = 100_000  # (country, user, day) this replica already shared; forgotten when full
_COUNTRY = b'"country":"'


def country_of(member_or_json: bytes) -> str | None:
    """The country of a compact audit record (gateway.scoring.userview.compact), unparsed."""
    i = member_or_json.find(_COUNTRY)
    if i < 0:
        return None
    start = i + len(_COUNTRY)
    end = member_or_json.find(b'"', start)
    return member_or_json[start:end].decode() if end > start else None


class LivePeers:
    def __init__(self, model_history: dict[str, Any]):
        self.peers = Peers()
        self.peers.load(model_history.get("country_users", {}))
        self.settled = self.peers.settled()
        self.written: set[tuple[str, str, str]] = set()

    async def share(self, state: LiveState, items: Iterable[tuple[str, int, bytes]]) -> None:
        """Notes the countries of the records this replica appended: (user, epoch ms, JSON)."""
        notes: dict[str, dict[str, str]] = {}
        for user, ms, data in items:
            country = country_of(data)
            if country is None or country in self.settled:
                continue
            day = datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()
            if (country, user, day) in self.written:
                continue
            old = notes.setdefault(country, {}).get(user)
            notes[country][user] = day if old is None else min(old, day)
        if not notes:
            return
        await state.note_peers(notes)
        if len(self.written) > MAX_WRITTEN:
            self.written.clear()
        self.written.update((c, u, d) for c, users in notes.items() for u, d in users.items())

    async def learn(self, state: LiveState, fetched: Iterable[Fetched]) -> None:
        """Before the views replay these records: what every replica noted about their countries."""
        countries = {c for f in fetched for m in f.members if (c := country_of(member_json(m))) is not None}
        wanted = sorted(countries - self.settled)
        for country, users in (await state.peers(wanted)).items():
            for user, day in users.items():
                self.peers.note(country, user, day)
