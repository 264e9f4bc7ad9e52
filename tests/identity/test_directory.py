"""rules/users.yaml: the demo directory loads; every mistake is reported with file:line:col."""

from __future__ import annotations

import hashlib

import pytest

from gateway.model import User

HEX = "sha256:" + "a" * 64


def test_demo_directory_has_the_ten_contract_users(directory):
    assert sorted(directory.users) == sorted(
        ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "svc-reporting"]
    )
    alice = directory.get("alice")
    assert isinstance(alice, User)
    assert (alice.email, alice.team, alice.region, alice.branch, alice.timezone) == (
        "alice@example.com",
        "east",
        "emea",
        "paris",
        "Europe/Paris",
    )
    assert directory.get("ivan").status == "offboarded"
    assert directory.get("nobody") is None


@pytest.mark.parametrize(
    "user, effective",
    [
        ("alice", {"sales_rep"}),
        ("dave", {"sales_manager", "sales_rep"}),
        ("grace", {"admin", "sales_manager", "sales_rep"}),
        ("heidi", {"security_analyst"}),
    ],
)
def test_demo_role_inheritance(directory, user, effective):
    assert directory.get(user).effective_roles == effective


def test_demo_credentials_are_stored_as_hashes(directory):
    digest = hashlib.sha256(b"demo-reporting-key").hexdigest()
    assert directory.api_keys == {digest: "svc-reporting"}
    for uid in directory.users:
        assert directory.crm_tokens[hashlib.sha256(f"crmpat-{uid}".encode()).hexdigest()] == uid


def test_roles_are_exposed_with_their_parents(directory):
    assert directory.roles["admin"].inherits == ("sales_manager",)
    assert directory.roles["sales_rep"].description


def test_attributes_are_read_through_user_attribute(load_users):
    loaded, errors = load_users(
        """\
        roles: {r: {}}
        users:
          u: {roles: [r], team: t, attributes: {cost_center: "4100"}}
        """
    )
    assert errors == []
    assert loaded.get("u").attribute("cost_center") == "4100"
    assert loaded.get("u").attribute("team") == "t"


def test_inheritance_is_transitive_over_several_levels(load_users):
    loaded, errors = load_users(
        """\
        roles:
          a: {inherits: [b]}
          b: {inherits: [c, d]}
          c: {}
          d: {inherits: [c]}
        users:
          u: {roles: [a]}
        """
    )
    assert errors == []
    assert loaded.get("u").effective_roles == {"a", "b", "c", "d"}
    assert loaded.get("u").roles == {"a"}


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            "roles: {r: {}}\nusers:\n  u: {roles: [r, ghost]}\n",
            "users.yaml:4:18: user 'u' has unknown role 'ghost'",
        ),
        (
            "roles:\n  r: {inherits: [ghost]}\nusers: {}\n",
            "users.yaml:3:18: role 'r' inherits unknown role 'ghost'",
        ),
        (
            "roles: {r: {}}\nusers:\n  u: {roles: [r], timezone: Mars/Olympus}\n",
            "users.yaml:4:29: unknown time zone 'Mars/Olympus' (IANA name expected)",
        ),
        (
            "roles: {r: {}}\nusers:\n  u: {roles: [r], api_keys: [deadbeef]}\n",
            "users.yaml:4:30: api_keys entries must be 'sha256:' and 64 lower-case hex digits",
        ),
        (
            f"roles: {{r: {{}}}}\nusers:\n  u: {{roles: [r], crm_tokens: ['{HEX.upper()}']}}\n",
            "users.yaml:4:32: crm_tokens entries must be 'sha256:' and 64 lower-case hex digits",
        ),
        (
            "roles: {r: {}}\nusers:\n  u: {roles: [r], colour: blue}\n",
            "users.yaml:4:19: users.u.colour: unknown key 'colour'",
        ),
        (
            "roles: {r: {}}\nusers:\n  u: {roles: [r], status: retired}\n",
            "users.yaml:4:27: users.u.status: Input should be 'active', 'suspended' or 'offboarded'",
        ),
        (
            "roles: {r: {}}\nusers:\n  u: {roles: [r], attributes: {team: x}}\n",
            "users.yaml:4:38: attribute 'team' is built in; set it with the user's 'team' key",
        ),
        (
            "roles: {r: {}}\nusers:\n  'bad id': {roles: [r]}\n",
            "users.yaml:4:13: user id 'bad id' must match [A-Za-z0-9][A-Za-z0-9._@-]{0,127}",
        ),
    ],
)
def test_mistakes_are_reported_with_file_line_col(load_users, body, expected):
    loaded, errors = load_users(body)
    assert loaded is None
    assert errors == [expected]


def test_inheritance_cycle_is_reported_once(load_users):
    loaded, errors = load_users(
        """\
        roles:
          a: {inherits: [b]}
          b: {inherits: [a]}
        users: {}
        """
    )
    assert loaded is None
    assert errors == ["users.yaml:3:17: role inheritance cycle: a -> b -> a"]


def test_same_key_hash_on_two_users_is_an_error(load_users):
    loaded, errors = load_users(
        f"""\
        roles: {{r: {{}}}}
        users:
          u: {{roles: [r], api_keys: ["{HEX}"]}}
          v: {{roles: [r], api_keys: ["{HEX}"]}}
        """
    )
    assert loaded is None
    assert errors == ["users.yaml:5:30: this api key hash is already given to user 'u' (line 4)"]


def test_all_problems_are_reported_at_once(load_users):
    loaded, errors = load_users(
        """\
        roles: {r: {inherits: [nope]}}
        users:
          u: {roles: [ghost], timezone: Nowhere/City}
          v: {roles: [r], api_keys: [plain-text-key]}
        """
    )
    assert loaded is None
    assert len(errors) == 4


def test_missing_sections_and_wrong_format_are_refused(tmp_path, load_users):
    loaded, errors = load_users("users: {}\n")
    assert loaded is None
    assert errors == ["users.yaml:1:1: roles: Field required"]
    path = tmp_path / "old.yaml"
    path.write_text("format: crmgw.rules/v0\nroles: {}\nusers: {}\n")
    from gateway.identity.directory import load_directory

    loaded, errors = load_directory(path, "old.yaml")
    assert loaded is None and "unknown or missing format" in str(errors[0])


def test_directory_is_immutable(directory):
    with pytest.raises(TypeError):
        directory.users["mallory"] = User("mallory")  # type: ignore[index]
