"""The realistic profile's people and teams: UUIDs pinned (rule files carry them), references resolved."""

from __future__ import annotations

import pytest

from democrm.realistic import PROFILES, TEAMS, profile_id, team_id
from democrm.realistic.people import (
    all_profiles,
    derived_teams,
    profile_brief,
    profile_ref,
    team_of_reference,
    user_of_profile,
    user_of_reference,
)
from democrm.seed import DIRECTORY

# Literal values on purpose: the gateway's rule files for this profile contain them.
PINNED_PROFILES = {
    "alice": "28f23903-8a21-59d9-9e07-160d90600eaa",
    "bob": "4525454e-3bb1-533e-b4ab-725b16e52b9e",
    "carol": "d1f807d4-d3c0-5aa3-b206-6a65756a714f",
    "dave": "4509166d-ba6a-5144-a0db-0774d0f238ca",
    "erin": "5acb23f5-07d7-5fa0-a039-5956d32d1d19",
    "frank": "52fde731-94db-5fbc-9bb9-9bcb0c809cc2",
    "grace": "6f03cd3c-3edd-5016-bc6f-254d2144ebf6",
    "heidi": "5507a7bc-9478-5385-bd5f-9b6d1eaa882b",
    "ivan": "7144d24a-f0cf-51db-88d1-301008ccce5a",
    "svc-reporting": "57be28ac-d6b4-5856-a99b-ec5409903acf",
}
PINNED_TEAMS = {
    "east": "b34381d3-7a79-5342-bf1d-3b41742d60cd",
    "west": "28646859-ad85-5932-b44c-01b442abdd18",
    "support": "12ab298b-520d-5b9b-af94-8f6ab4d0d7b5",
    "it": "b90e6c69-3ac1-5658-8f63-770f7ca03145",
    "security": "57e723c0-e53b-50b3-a309-2f02712b5a30",
}


def test_profile_ids_are_pinned():
    assert profile_id("alice") == "28f23903-8a21-59d9-9e07-160d90600eaa"
    assert PROFILES == PINNED_PROFILES


def test_team_ids_are_pinned():
    assert team_id("east") == "b34381d3-7a79-5342-bf1d-3b41742d60cd"
    assert TEAMS == PINNED_TEAMS


def test_every_directory_user_has_a_profile_and_every_team_a_record():
    assert list(PROFILES) == list(DIRECTORY)
    assert set(TEAMS) == {person["team"] for person in DIRECTORY.values()}


def test_profile_objects_carry_id_email_and_name():
    assert profile_ref("alice") == {
        "id": PINNED_PROFILES["alice"],
        "email": "alice@example.com",
        "name": "Alice Martin",
    }
    assert profile_brief("alice") == {"id": PINNED_PROFILES["alice"], "email": "alice@example.com"}
    assert [p["email"] for p in all_profiles()] == [f"{user}@example.com" for user in DIRECTORY]


@pytest.mark.parametrize(
    "reference",
    [
        PINNED_PROFILES["bob"],
        "bob@example.com",
        "BOB@example.com",
        f" {PINNED_PROFILES['bob']} ",
        {"id": PINNED_PROFILES["bob"]},
        {"email": "bob@example.com"},
        {"id": "bob@example.com", "name": "x"},
    ],
)
def test_a_person_is_named_by_profile_uuid_or_email_bare_or_as_an_object(reference):
    assert user_of_reference(reference) == "bob"


@pytest.mark.parametrize(
    "reference", ["bob", "", "nobody@example.com", 7, None, {"name": "Bob Wang"}, [PINNED_PROFILES["bob"]]]
)
def test_directory_ids_and_other_values_name_nobody(reference):
    assert user_of_reference(reference) is None


@pytest.mark.parametrize(
    "reference", [PINNED_TEAMS["west"], "west", "West", {"id": PINNED_TEAMS["west"]}, {"name": "west"}]
)
def test_a_team_is_named_by_uuid_or_name(reference):
    assert team_of_reference(reference) == "west"


def test_derived_teams_follow_the_assignees_in_order_once_each():
    assert derived_teams(["carol", "alice", "ivan"]) == [
        {"id": PINNED_TEAMS["west"], "name": "west"},
        {"id": PINNED_TEAMS["east"], "name": "east"},
    ]


def test_user_of_profile_reverses_profile_id():
    assert all(user_of_profile(profile_id(user)) == user for user in DIRECTORY)
    assert user_of_profile("alice") is None
