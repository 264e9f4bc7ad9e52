"""The people and teams of the realistic profile, named the way a real CRM names them: by UUID.

A real CRM (Django REST style) does not know the gateway's user ids ("alice"); it knows a *profile*
per user and a *team* record per team, each with a UUID. The gateway's rule files for this profile
carry these UUIDs, so they are pure functions of the name (uuid5 over a fixed URL) and pinned by a
test: changing them silently would break every rule file written against them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from democrm.seed import DIRECTORY

# Display names as the CRM shows them ("name" in profile objects). The ids are the directory's.
NAMES: dict[str, str] = {
    "alice": "Alice Martin",
    "bob": "Bob Wang",
    "carol": "Carol Dubois",
    "dave": "Dave Moreau",
    "erin": "Erin Zhang",
    "frank": "Frank Leroy",
    "grace": "Grace Petit",
    "heidi": "Heidi Durand",
    "ivan": "Ivan Liu",
    "svc-reporting": "Reporting Service",
}
TEAM_NAMES: tuple[str, ...] = ("east", "west", "support", "it", "security")
# Escalation goes to the manager of the *other* sales team (see records.escalation_target).
ESCALATE_TO: dict[str, str] = {"east": "erin", "west": "dave"}
SALES_MANAGERS = frozenset(user for user, person in DIRECTORY.items() if person["role"] == "sales_manager")


def profile_id(user: str) -> str:
    """The CRM profile UUID of a directory user, e.g. ``profile_id("alice")``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"democrm/profile/{user}"))


def team_id(team: str) -> str:
    """The CRM team UUID of a team name, e.g. ``team_id("east")``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"democrm/team/{team}"))


PROFILES: dict[str, str] = {user: profile_id(user) for user in DIRECTORY}
TEAMS: dict[str, str] = {team: team_id(team) for team in TEAM_NAMES}
_USER_BY_PROFILE = {uuid_: user for user, uuid_ in PROFILES.items()}
_USER_BY_EMAIL = {f"{user}@example.com": user for user in DIRECTORY}
_TEAM_BY_ID = {uuid_: team for team, uuid_ in TEAMS.items()}


def email_of(user: str) -> str:
    return f"{user}@example.com"


def team_of(user: str) -> str:
    return DIRECTORY[user]["team"]


def profile_ref(user: str) -> dict[str, str]:
    """The profile object of lists and nested records: ``{"id", "email", "name"}``."""
    return {"id": PROFILES[user], "email": email_of(user), "name": NAMES[user]}


def profile_brief(user: str) -> dict[str, str]:
    """The smaller ``{"id", "email"}`` object an account's ``created_by`` uses."""
    return {"id": PROFILES[user], "email": email_of(user)}


def team_ref(team: str) -> dict[str, str]:
    return {"id": TEAMS[team], "name": team}


def all_profiles() -> list[dict[str, str]]:
    """The ``users`` side list of list answers: every profile the CRM has, offboarded or not."""
    return [profile_ref(user) for user in DIRECTORY]


def user_of_profile(profile: str) -> str | None:
    return _USER_BY_PROFILE.get(profile)


def user_of_reference(value: Any) -> str | None:
    """The directory user a body's person reference names: a profile UUID or an e-mail, bare or
    as ``{"id": ...}`` / ``{"email": ...}``; None when it names nobody the CRM knows."""
    if isinstance(value, Mapping):
        if "id" in value:
            value = value["id"]
        elif "email" in value:
            value = value["email"]
        else:
            return None
    if not isinstance(value, str):
        return None
    value = value.strip()
    return _USER_BY_PROFILE.get(value.lower()) or _USER_BY_EMAIL.get(value.lower())


def team_of_reference(value: Any) -> str | None:
    """The team a body's team reference names: a team UUID or a name, bare or as an object."""
    if isinstance(value, Mapping):
        value = value.get("id", value.get("name"))
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return _TEAM_BY_ID.get(value) or (value if value in TEAMS else None)


def derived_teams(users: list[str]) -> list[dict[str, str]]:
    """The assignees' teams, in assignee order, each once: what the CRM stores when none are given."""
    names = list(dict.fromkeys(team_of(user) for user in users))
    return [team_ref(team) for team in names]
