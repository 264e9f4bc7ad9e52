"""Which users have worked from which country, and since when: the peers behind
``new_country_requests`` / ``new_country_off_hours``.

A country new to a user is a signal only if fewer than ``PEER_COUNTRY_USERS`` other users worked
from it on a day *before* the user's day. Counting only earlier days makes the answer a function of
the audit lines alone, not of the order a replay happens to close users' days in, so the offline
replay and the live scorer (where other replicas learn peers at their own pace) agree: each side
notes (country, user, first day) as records arrive, and the live side shares its notes in Redis
(gateway.scoring.livestate).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PEER_COUNTRY_USERS = 2
ALWAYS = ""  # a peer from an older state without days: counts on every day (sorts before any day)


class Peers:
    __slots__ = ("first",)

    def __init__(self) -> None:
        self.first: dict[str, dict[str, str]] = {}  # country -> user -> first day worked from it

    def note(self, country: str, user: str, day: str) -> bool:
        """Remembers that ``user`` worked from ``country`` on ``day``; True if that is news."""
        users = self.first.get(country)
        if users is None:
            users = self.first[country] = {}
        old = users.get(user)
        if old is not None and old <= day:
            return False
        users[user] = day
        return True

    def rare(self, country: str, user: str, day: str | None = None) -> bool:
        """Fewer than PEER_COUNTRY_USERS other users worked from ``country`` before ``day``
        (None: on any day)."""
        n = 0
        for other, first in self.first.get(country, {}).items():
            if other != user and (day is None or first < day):
                n += 1
                if n >= PEER_COUNTRY_USERS:
                    return False
        return True

    def settled(self) -> set[str]:
        """Countries never rare again for anyone (more than PEER_COUNTRY_USERS users, on days
        before any later day): nothing about them needs sharing."""
        return {c for c, users in self.first.items() if len(users) > PEER_COUNTRY_USERS}

    def load(self, country_users: Mapping[str, Any]) -> None:
        """Merges a saved ``country_users``: {country: {user: day}}, or {country: [user, ...]} of
        older states (those count on every day)."""
        for country, users in country_users.items():
            pairs: Iterable[tuple[str, str]] = (
                users.items() if isinstance(users, Mapping) else ((u, ALWAYS) for u in users)
            )
            for user, day in pairs:
                self.note(country, str(user), str(day))

    def state(self) -> dict[str, dict[str, str]]:
        return {c: dict(sorted(users.items())) for c, users in sorted(self.first.items())}


__all__ = ["ALWAYS", "PEER_COUNTRY_USERS", "Peers"]
